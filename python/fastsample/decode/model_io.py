"""How the decode loops drive a transformers causal LM: left-padded prompts, one forward per
step with positions over real tokens, and KV-cache rows copied or reordered."""
from __future__ import annotations

import functools
import inspect
from typing import Any, List, Tuple

import torch


def pad_token_id(model: Any, tokenizer: Any, eos: Any) -> int:
    """The tokenizer's pad id, else the model's, else the first EOS id, else 0."""
    for v in (getattr(tokenizer, "pad_token_id", None),
              getattr(model.generation_config, "pad_token_id", None), eos):
        if isinstance(v, (list, tuple)):
            v = v[0] if v else None
        if v is not None:
            return int(v)
    return 0


def left_padded(ids: List[List[int]], pad_id: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """int64 input_ids and attention_mask [N, max len], prompts aligned to the right."""
    width = max(len(p) for p in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(ids), width), dtype=torch.int64)
    for i, p in enumerate(ids):
        input_ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    return input_ids, mask


@functools.lru_cache(maxsize=None)
def _cache_keyword(model_type: type) -> str:
    params = inspect.signature(model_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_keyword(model: Any) -> str:
    """The keyword a model's forward takes its KV cache by: `cache` (transformers 5.x, where
    `past_key_values` is deprecated) or `past_key_values` (transformers 4.x)."""
    return _cache_keyword(type(model))


def output_cache(out: Any) -> Any:
    """The KV cache a forward returned, under either name (None: none)."""
    for name in ("cache", "past_key_values"):
        found = getattr(out, name, None)
        if found is not None:
            return found
    return None


def model_step(model: Any, step_ids: torch.Tensor, mask: torch.Tensor, past: Any,
               hidden_states: bool = False) -> Any:
    """One forward of a decode loop over left-padded rows: step_ids [N, T] (the prompts, then
    one token per row), mask [N, L] over everything so far, past the cache so far (None at the
    prefill; the step's is output_cache(returned)). Positions count real tokens only, as
    transformers' generate does with left padding. hidden_states: also return every layer's
    (contrastive search reads the last)."""
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
    extra = {"output_hidden_states": True} if hidden_states else {}
    with torch.no_grad():
        return model(input_ids=step_ids, attention_mask=mask, position_ids=position_ids,
                     use_cache=True, **{cache_keyword(model): past}, **extra)


def select_cache_rows(past: Any, index: torch.Tensor) -> Any:
    """The KV cache with its batch rows taken by `index` (rows may repeat: n samples of one
    prefill, beams continuing the same parent), as transformers' reorder_cache does."""
    if hasattr(past, "reorder_cache"):
        past.reorder_cache(index)
        return past
    if isinstance(past, (tuple, list)):  # the legacy form: per layer (key, value, ...)
        return tuple(tuple(t.index_select(0, index.to(t.device)) for t in layer)
                     for layer in past)
    raise TypeError(f"the model's cache ({type(past).__name__}) cannot be reordered: several "
                    f"sequences per prompt and beam search need a transformers Cache")


def output_vocab_size(model: Any) -> int:
    """V of the model's logits."""
    return int(model.get_output_embeddings().weight.shape[0])


def crop_cache(past: Any, length: int) -> Any:
    """The KV cache cut to its first `length` positions (speculative decoding drops what the
    rejected drafts wrote): crop(-n) removes the last n in transformers 4.x and 5.x alike;
    the legacy per-layer tuples are sliced."""
    if hasattr(past, "crop"):
        extra = past.get_seq_length() - length
        if extra > 0:
            past.crop(-extra)
        return past
    if isinstance(past, (tuple, list)):
        return tuple(tuple(t[..., :length, :] for t in layer) for layer in past)
    raise TypeError(f"the model's cache ({type(past).__name__}) cannot be cut back: assisted "
                    f"generation needs a transformers Cache with crop()")
