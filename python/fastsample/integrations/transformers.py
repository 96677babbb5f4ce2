"""Hugging Face transformers integration (importable only when transformers is installed).

- FastLogitsProcessor: repetition penalty, temperature, top-k, top-p and min-p as one fused
  call; returns what transformers' processor chain returns. Use it with
  `model.generate(..., logits_processor=LogitsProcessorList([proc]), **proc.generate_kwargs())`:
  generate_kwargs() turns transformers' own warpers off (v5 adds TopK(50) by itself when
  do_sample=True and top_k is unset; it would then filter again after fastsample).
- from_generation_config(config): the processor for a model's GenerationConfig.
- sample_loop: `model.generate(**inputs, custom_generate=fastsample.transformers.sample_loop)`
  runs fastsample's decode loop (Sampler, one fused call per step) with the generation
  config's sampling parameters.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

try:
    from transformers import LogitsProcessor
except ImportError as e:  # pragma: no cover - exercised only without transformers
    raise ImportError("fastsample.transformers needs the transformers package: "
                      "pip install transformers") from e

from ..decode.generate import decode_steps, output_vocab_size, pad_token_id
from ..decode.sampler import Sampler
from ..functional.sampling import process_logits
from ..requests.sampling_params import SamplingParams
from ..adapters import from_hf


class FastLogitsProcessor(LogitsProcessor):
    """A transformers LogitsProcessor running repetition penalty (over input_ids), temperature,
    top-k, top-p, min-p, top-n-sigma and XTC as one fused fastsample call.

    Args (SamplingParams ranges; defaults are "off"): temperature 1.0 (> 0 here: transformers
    samples after processors), top_k 0, top_p 1.0, min_p 0.0, top_n_sigma 0.0,
    xtc_threshold 0.1 and xtc_probability 0.0 (XTC's coin: from `seed` at offset = the
    sequence length, so a seeded processor repeats across runs; seed None draws each step's
    seeds from torch's default generator, which torch.manual_seed makes reproducible),
    repetition_penalty 1.0,
    presence_penalty / frequency_penalty 0.0 (over input_ids, i.e. prompt and output alike,
    since a processor cannot tell them apart), logit_bias, banned_token_ids, allowed_token_ids.
    Returns float32 scores [B, V]: scores / T on the keep-set, -inf elsewhere.
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 min_p: float = 0.0, repetition_penalty: float = 1.0,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                 logit_bias: Optional[Dict[int, float]] = None, banned_token_ids: Any = None,
                 top_n_sigma: float = 0.0, allowed_token_ids: Any = None,
                 xtc_threshold: float = 0.1, xtc_probability: float = 0.0,
                 seed: Optional[int] = None):
        self.params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p,
                                     min_p=min_p, top_n_sigma=top_n_sigma,
                                     xtc_threshold=xtc_threshold,
                                     xtc_probability=xtc_probability, seed=seed,
                                     repetition_penalty=repetition_penalty,
                                     presence_penalty=presence_penalty,
                                     frequency_penalty=frequency_penalty, logit_bias=logit_bias,
                                     banned_token_ids=banned_token_ids,
                                     allowed_token_ids=allowed_token_ids)
        if self.params.temperature == 0.0:
            raise ValueError("temperature=0 is greedy: use do_sample=False in generate instead "
                             "of a sampling processor")

    @classmethod
    def from_params(cls, params: SamplingParams) -> "FastLogitsProcessor":
        """The processor for the sampling fields of a SamplingParams (resolved first). Raises
        ValueError for structured_output and prompt_logprobs, which a logits processor cannot
        run."""
        for name in ("structured_output", "prompt_logprobs"):
            if getattr(params, name) is not None:
                raise ValueError(f"{name}={getattr(params, name)!r} cannot be run by a logits "
                                 f"processor; FastLogitsProcessor takes the sampling fields only")
        p = params.resolve()
        return cls(temperature=p.temperature, top_k=p.top_k, top_p=p.top_p, min_p=p.min_p,
                   top_n_sigma=p.top_n_sigma, repetition_penalty=p.repetition_penalty, presence_penalty=p.presence_penalty,
                   frequency_penalty=p.frequency_penalty, logit_bias=p.logit_bias,
                   banned_token_ids=p.banned_token_ids, allowed_token_ids=p.allowed_token_ids,
                   xtc_threshold=p.xtc_threshold, xtc_probability=p.xtc_probability,
                   seed=p.seed)

    @staticmethod
    def generate_kwargs() -> Dict[str, Any]:
        """generate() arguments that sample with this processor alone (transformers' own
        temperature/top-k/top-p/min-p/repetition processors off)."""
        return dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, min_p=None,
                    repetition_penalty=1.0)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        p = self.params
        history = p.repetition_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0
        return process_logits(
            scores, temperature=p.temperature, top_k=p.top_k, top_p=p.top_p, min_p=p.min_p,
            top_n_sigma=p.top_n_sigma, xtc_threshold=p.xtc_threshold,
            xtc_probability=p.xtc_probability, seed=p.seed, offset=input_ids.shape[1],
            repetition_penalty=p.repetition_penalty, presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            prompt_token_ids=input_ids if p.repetition_penalty != 1.0 else None,
            output_token_ids=input_ids if history and p.repetition_penalty == 1.0 else None,
            logit_bias=dict(p.logit_bias) if p.logit_bias else None,
            banned_token_ids=list(p.banned_token_ids) if p.banned_token_ids else None,
            allowed_token_ids=(list(p.allowed_token_ids) if p.allowed_token_ids is not None
                               else None))


def from_generation_config(config: Any) -> FastLogitsProcessor:
    """The FastLogitsProcessor for a GenerationConfig (transformers' defaults for unset fields;
    fields a processor cannot apply, like max_new_tokens, are ignored)."""
    return FastLogitsProcessor.from_params(from_hf(config, lenient=True))


def sample_loop(model: Any, input_ids: torch.LongTensor, logits_processor: Any = None,
                stopping_criteria: Any = None, generation_config: Any = None,
                synced_gpus: bool = False, streamer: Any = None, **model_kwargs: Any
                ) -> torch.LongTensor:
    """A `custom_generate` callable: generate(**inputs, custom_generate=sample_loop) decodes
    with fastsample's Sampler. Sampling parameters, max_new_tokens, min_new_tokens and EOS come
    from the generation config (logits_processor / stopping_criteria built by transformers from
    it are not applied again). Returns sequences [B, L + new] padded with the pad id, as
    transformers' sampling does."""
    params = from_hf(generation_config, lenient=True)
    if params.max_tokens is None:
        max_length = params.metadata.get("max_length") or 20
        params = _replace(params, max_tokens=max(1, int(max_length) - input_ids.shape[1]))
    eos = params.eos_token_ids
    pad_id = generation_config.pad_token_id if generation_config.pad_token_id is not None else (
        eos[0] if eos else 0)
    mask = model_kwargs.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(input_ids)
    sampler = Sampler(output_vocab_size(model), device=model.device, eos_token_id=eos)
    for row in range(input_ids.shape[0]):
        sampler.add(row, params, input_ids[row][mask[row] > 0].tolist())
    generated = [[] for _ in range(input_ids.shape[0])]
    if streamer is not None:
        streamer.put(input_ids.cpu())
    for row, res in decode_steps(model, input_ids, mask, sampler, pad_id):
        generated[row].append(res.token)
        if streamer is not None:
            streamer.put(torch.tensor([res.token]))
    if streamer is not None:
        streamer.end()
    width = max(len(g) for g in generated)
    out = torch.full((input_ids.shape[0], width), pad_id, dtype=input_ids.dtype)
    for row, g in enumerate(generated):
        out[row, :len(g)] = torch.tensor(g, dtype=input_ids.dtype)
    return torch.cat([input_ids, out.to(input_ids.device)], dim=1)


def _replace(p: SamplingParams, **changes: Any) -> SamplingParams:
    from dataclasses import replace
    return replace(p, **changes)


__all__ = ["FastLogitsProcessor", "from_generation_config", "sample_loop", "pad_token_id"]
