"""fastsample.SamplingBatch: a batch of SamplingParams as the per-row tensors the kernels read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from . import _params
from ._sampling_params import SamplingParams


@dataclass(frozen=True)
class BatchFlags:
    """What a fused call can skip for this batch."""

    all_greedy: bool
    any_greedy: bool
    any_top_k: bool
    any_top_p: bool
    any_min_p: bool
    any_penalties: bool
    any_logit_bias: bool
    any_masks: bool
    max_logprobs: int  # -1: no row asks for logprobs


class SamplingBatch:
    """Per-row parameter tensors for a list of requests, built once on `device`.

    Tensors (all [B], on `device`): temperature float32, top_k int64, top_p float64,
    min_p float32, top_n_sigma float32, repetition_penalty / presence_penalty /
    frequency_penalty float32,
    seed int64 (unseeded rows get a seed drawn once from `generator` when the batch is built,
    so a request keeps its random stream across steps), offset int64 (each row's position in
    that stream: 0 at build, +1 per `advance()`), max_tokens int64 (-1 = no limit),
    min_tokens int64. `params` holds the resolved SamplingParams (distributions drawn once,
    from each request's seed). Build a new batch only when the requests change:
    `batch.update(params)` returns the same object when nothing changed.

    A decode loop over fixed requests::

        tokens = fastsample.sample(logits, **batch.filter_kwargs())
        batch.advance()   # the next step draws the next number of each row's stream
    """

    def __init__(self, params: Sequence[SamplingParams], device: Any = "cpu",
                 generator: Optional[torch.Generator] = None):
        for i, p in enumerate(params):
            if not isinstance(p, SamplingParams):
                raise TypeError(f"params[{i}] must be a fastsample.SamplingParams, got {type(p).__name__}")
        _params.check_generator(generator)
        self.source: Tuple[SamplingParams, ...] = tuple(params)
        self.params: Tuple[SamplingParams, ...] = tuple(p.resolve() for p in params)
        self.device = torch.device(device)
        rows = self.params
        f32 = lambda vals: torch.tensor(vals, dtype=torch.float32, device=self.device)  # noqa: E731
        i64 = lambda vals: torch.tensor(vals, dtype=torch.int64, device=self.device)  # noqa: E731
        self.temperature = f32([p.temperature for p in rows])
        self.top_k = i64([p.top_k for p in rows])
        self.top_p = torch.tensor([p.top_p for p in rows], dtype=_params.TOP_P.dtype,
                                  device=self.device)
        self.min_p = f32([p.min_p for p in rows])
        self.top_n_sigma = f32([p.top_n_sigma for p in rows])
        self.repetition_penalty = f32([p.repetition_penalty for p in rows])
        self.presence_penalty = f32([p.presence_penalty for p in rows])
        self.frequency_penalty = f32([p.frequency_penalty for p in rows])
        drawn = _params.draw_seeds(torch.empty(len(rows), dtype=torch.int64), generator).tolist()
        self.seed = i64([d if p.seed is None else p.seed for p, d in zip(rows, drawn)])
        self.offset = i64([0] * len(rows))
        self.max_tokens = i64([-1 if p.max_tokens is None else p.max_tokens for p in rows])
        self.min_tokens = i64([p.min_tokens for p in rows])
        greedy = [p.temperature == 0.0 for p in rows]
        self.flags = BatchFlags(
            all_greedy=bool(rows) and all(greedy),
            any_greedy=any(greedy),
            any_top_k=any(p.top_k > 0 and not g for p, g in zip(rows, greedy)),
            any_top_p=any(p.top_p < 1.0 and not g for p, g in zip(rows, greedy)),
            any_min_p=any(p.min_p > 0.0 and not g for p, g in zip(rows, greedy)),
            any_penalties=any(p.repetition_penalty != 1.0 or p.presence_penalty != 0.0
                              or p.frequency_penalty != 0.0 for p in rows),
            any_logit_bias=any(p.logit_bias for p in rows),
            any_masks=any(p.allowed_token_ids is not None or p.banned_token_ids for p in rows),
            max_logprobs=max([-1] + [p.logprobs for p in rows if p.logprobs is not None]),
        )

    def __len__(self) -> int:
        return len(self.params)

    def update(self, params: Sequence[SamplingParams],
               generator: Optional[torch.Generator] = None) -> "SamplingBatch":
        """This batch if `params` are the same requests in the same order, else a new one."""
        if len(params) == len(self.source) and all(a is b for a, b in zip(params, self.source)):
            return self
        return SamplingBatch(params, self.device, generator)

    def filter_kwargs(self) -> Dict[str, torch.Tensor]:
        """temperature, top_k, top_p, min_p, top_n_sigma, seed and offset, the per-row tensors
        of fastsample.sample (process_logits takes the first five). Raises ValueError when a
        row sets a field these cannot carry (penalties, logit_bias, allowed/banned ids, stop
        ids, min_tokens, logprobs: they need the row's history or outputs), naming the rows:
        a fastsample.Sampler runs such requests."""
        unsupported = {}
        for i, p in enumerate(self.params):
            fields = [name for name, on in (
                ("repetition_penalty", p.repetition_penalty != 1.0),
                ("presence_penalty", p.presence_penalty != 0.0),
                ("frequency_penalty", p.frequency_penalty != 0.0),
                ("logit_bias", bool(p.logit_bias)),
                ("allowed_token_ids", p.allowed_token_ids is not None),
                ("banned_token_ids", bool(p.banned_token_ids)),
                ("stop_token_ids", bool(p.stop_token_ids)),
                ("min_tokens", p.min_tokens > 0),
                ("logprobs", p.logprobs is not None)) if on]
            if fields:
                unsupported[i] = fields
        if unsupported:
            raise ValueError(f"SamplingBatch.filter_kwargs() carries the filters and the seeds "
                             f"only; rows {unsupported} set more: run these requests with a "
                             f"fastsample.Sampler (it keeps their histories and outputs)")
        return dict(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                    min_p=self.min_p, top_n_sigma=self.top_n_sigma, seed=self.seed,
                    offset=self.offset)

    def advance(self) -> None:
        """Moves every row one number on in its random stream (offset += 1, on the device):
        call it once per decode step, or each step repeats the last step's draw."""
        self.offset += 1

    def __repr__(self) -> str:
        return f"SamplingBatch(rows={len(self)}, device={self.device}, flags={self.flags})"
