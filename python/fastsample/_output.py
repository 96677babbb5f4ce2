"""The result type of fastsample.sample."""
from __future__ import annotations

from typing import NamedTuple

import torch


class SampleOutput(NamedTuple):
    """What `sample(..., return_valid=True)` returns.

    tokens: int64 [B], the sampled token ids (-1 where the row had no valid token).
    valid:  bool [B], False where every logit of the row was -inf/NaN (nothing could be drawn).
    """

    tokens: torch.Tensor
    valid: torch.Tensor
