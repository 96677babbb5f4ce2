"""fastsample.generate: a complete decode loop for transformers causal LMs, sampling with a
Sampler (one fused call per step)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from ..functional.scoring import PromptLogprobs
from .sampler import Sampler, StepOutput
from ..requests.sampling_params import SamplingParams

# What max_tokens means when a request leaves it unset (vLLM's default).
DEFAULT_MAX_TOKENS = 16


@dataclass
class GenerationResult:
    """One prompt's generation: token_ids (generated only, a final EOS/stop id included), text
    (with a tokenizer; stop strings and a final EOS/stop token excluded), finish_reason
    ("length" | "eos" | "stop"), per token (logprob, top_ids, top_logprobs) when asked, and
    prompt_logprobs (fastsample.PromptLogprobs over the prompt's tokens after the first, raw)
    when asked."""

    token_ids: List[int] = field(default_factory=list)
    text: Optional[str] = None
    finish_reason: Optional[str] = None
    logprobs: Optional[List[Tuple[float, List[int], List[float]]]] = None
    prompt_logprobs: Optional[PromptLogprobs] = None


@dataclass
class StreamEvent:
    """What generate(stream=True) yields: the prompt's index and its step output."""

    index: int
    output: StepOutput


def _encode(prompts: Any, tokenizer: Any) -> List[List[int]]:
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.is_floating_point():
            raise ValueError(f"prompts as a tensor must be int64 [N, L], got {tuple(prompts.shape)} {prompts.dtype}")
        return [row.tolist() for row in prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise TypeError("prompts must be a non-empty list of strings (with a tokenizer) or of "
                        "token-id lists, or a LongTensor [N, L]")
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            if tokenizer is None:
                raise ValueError(f"prompts[{i}] is a string: pass tokenizer=... to encode it")
            out.append(list(tokenizer(p)["input_ids"]))
        elif isinstance(p, (list, tuple)) and all(isinstance(t, int) for t in p):
            out.append(list(p))
        else:
            raise TypeError(f"prompts[{i}] must be a string or a list of token ids, got {type(p).__name__}")
        if not out[-1]:
            raise ValueError(f"prompts[{i}] is empty")
    return out


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


def decode_steps(model: Any, input_ids: torch.Tensor, mask: torch.Tensor, sampler: Sampler,
                 pad_id: int) -> Iterator[Tuple[int, StepOutput]]:
    """Runs the model with a KV cache over left-padded prompts (sampler request i = row i);
    yields (row, step output) for every sampled token. Finished rows keep being fed a pad
    token (their outputs are ignored), so the cache is never re-indexed."""
    device = model.device
    input_ids, mask = input_ids.to(device), mask.to(device)
    rows = input_ids.shape[0]
    active = list(range(rows))  # row of each sampler request, in the sampler's order
    past = None
    step_ids = input_ids
    while active:
        # Positions count real tokens only, as transformers' generate does with left padding.
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)[:, -step_ids.shape[1]:]
        with torch.no_grad():
            out = model(input_ids=step_ids, attention_mask=mask, position_ids=position_ids,
                        past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[:, -1, :]
        picked = logits.index_select(0, torch.tensor(active, device=logits.device))
        # The prefill's logits over each real prompt token, for requests scoring their prompt.
        width = out.logits.shape[1]
        prompt_logits = {row: out.logits[row, width - int(mask[row].sum()):, :].float()
                         for row in sampler.prompt_logits_wanted}
        results = sampler.step(picked.float().contiguous(), prompt_logits)
        next_tokens = torch.full((rows,), pad_id, dtype=torch.int64)
        for row, res in zip(active, results):
            next_tokens[row] = res.token
            yield row, res
        active = [row for row, res in zip(active, results) if not res.finished]
        step_ids = next_tokens.to(device)[:, None]
        mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=device)], dim=1)


def generate(model: Any, prompts: Any, params: Union[SamplingParams, Sequence[SamplingParams]],
             *, tokenizer: Any = None, stream: bool = False,
             generator: Optional[torch.Generator] = None
             ) -> Union[List[GenerationResult], Iterator[StreamEvent]]:
    """Generates for each prompt with any transformers causal LM, sampling with fastsample.

    Args:
        model: a transformers causal LM (forward takes input_ids, attention_mask, position_ids,
            past_key_values, use_cache and returns logits).
        prompts: list of strings (needs `tokenizer`), list of token-id lists, or int64 [N, L].
        params: one SamplingParams for every prompt, or one per prompt. max_tokens None means
            16 (vLLM's default); EOS ids default to the model's generation_config, then the
            tokenizer's.
        tokenizer: encodes string prompts, decodes `text`, enables stop strings.
        stream: yield a StreamEvent per sampled token instead of returning the results.
        generator: seeds requests without a seed.

    Returns:
        one GenerationResult per prompt, in order (or, with stream=True, an iterator).
    """
    ids = _encode(prompts, tokenizer)
    plist = [params] * len(ids) if isinstance(params, SamplingParams) else list(params)
    if len(plist) != len(ids):
        raise ValueError(f"params: expected one SamplingParams or {len(ids)} (one per prompt), got {len(plist)}")
    for i, p in enumerate(plist):
        if not isinstance(p, SamplingParams):
            raise TypeError(f"params[{i}] must be a fastsample.SamplingParams, got {type(p).__name__}")
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    sampler = Sampler(output_vocab_size(model), device=model.device, tokenizer=tokenizer, eos_token_id=eos,
                      generator=generator)
    for i, (p, prompt) in enumerate(zip(plist, ids)):
        if p.max_tokens is None:
            p = _with_max_tokens(p, DEFAULT_MAX_TOKENS)
        sampler.add(i, p, prompt)
    pad_id = pad_token_id(model, tokenizer, eos)
    input_ids, mask = left_padded(ids, pad_id)
    steps = decode_steps(model, input_ids, mask, sampler, pad_id)
    if stream:
        return (StreamEvent(i, res) for i, res in steps)
    results = [GenerationResult(logprobs=[] if p.logprobs is not None else None) for p in plist]
    for i, res in steps:
        r = results[i]
        r.token_ids.append(res.token)
        r.text = res.text
        r.finish_reason = res.finish_reason
        if res.prompt_logprobs is not None:
            r.prompt_logprobs = res.prompt_logprobs
        if r.logprobs is not None:
            r.logprobs.append((res.logprob, res.top_ids, res.top_logprobs))
    return results


def output_vocab_size(model: Any) -> int:
    """V of the model's logits."""
    return int(model.get_output_embeddings().weight.shape[0])


def _with_max_tokens(p: SamplingParams, n: int) -> SamplingParams:
    from dataclasses import replace
    return replace(p, max_tokens=max(n, p.min_tokens))
