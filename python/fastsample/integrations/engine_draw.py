"""The draw a serving engine's sampler plugin makes: fastsample.sample over the engine's batch.

An engine's worker cannot take an exception from one request's row without failing the whole
step, so a row whose logits have no valid token (all -inf or NaN, which a grammar or a model fault
can produce) gets token 0, without reading the logits again: what the engines' greedy path (an
argmax) emits for a row all -inf or all NaN (for a row mixing the two it would pick the first
NaN). The engine validated its requests' parameters, and its scheduler runs ahead of the GPU:
the call trusts the
per-row tensors on the GPU (`kernel.cuda.trusting_device_values`) and nothing here waits for it;
the plugins' own per-batch tensors go to the GPU the same way (`kernel.cuda.host_to_device`).
"""
from __future__ import annotations

from typing import Any

import torch

from ..functional.sampling import process_logits, sample
from ..kernel.cuda import trusting_device_values


def sample_engine_rows(logits: torch.Tensor, **keywords: Any) -> torch.Tensor:
    """int64 [B] tokens on the logits' device: `fastsample.sample(logits, **keywords)`, with a row
    that has no valid token (-1 from the kernels) given token 0."""
    with trusting_device_values():
        out = sample(logits, return_valid=True, **keywords)
    return out.tokens.clamp(min=0)


def process_engine_rows(logits: torch.Tensor, **keywords: Any) -> torch.Tensor:
    """float32 [B, V]: `fastsample.process_logits(logits, **keywords)` with the engine's GPU
    tensors trusted, as in sample_engine_rows."""
    with trusting_device_values():
        return process_logits(logits, **keywords)
