"""The draw a serving engine's sampler plugin makes: fastsample.sample over the engine's batch.

An engine's worker cannot take an exception from one request's row without failing the whole
step, so a row whose logits have no valid token (all -inf or NaN, which a grammar or a model fault
can produce) is answered as the engines' own greedy path answers it: the row's argmax. Nothing
waits for the GPU here.
"""
from __future__ import annotations

from typing import Any

import torch

from ..functional.sampling import sample


def sample_engine_rows(logits: torch.Tensor, **keywords: Any) -> torch.Tensor:
    """int64 [B] tokens on the logits' device: `fastsample.sample(logits, **keywords)`, with a row
    that has no valid token given its argmax (the token the engine's greedy path would emit)."""
    out = sample(logits, return_valid=True, **keywords)
    return torch.where(out.valid, out.tokens, logits.argmax(dim=-1))
