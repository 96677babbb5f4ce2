"""The result type of fastsample.sample, and the error for rows it cannot sample."""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch


class SampleOutput(NamedTuple):
    """What `sample(..., return_valid=True)` or `sample(..., logprobs=n)` returns.

    tokens: int64 [B], the sampled token ids (-1 where the row had no valid token).
    valid:  bool [B], False where the row's keep-set was empty (every logit -inf/NaN or masked).
    logprobs: float32 [B], the sampled token's logprob (-inf for invalid rows), or None.
    top_ids: int64 [B, n], the n most likely tokens (most likely first, lower id first among
        ties; -1 where fewer than n tokens have a finite logprob), or None.
    top_logprobs: float32 [B, n], their logprobs (-inf beside id -1), or None.
    Logprobs are `raw` (log_softmax of the sanitized logits) or `processed` (log_softmax of
    z = x / T over the keep-set) as logprobs_mode says.
    """

    tokens: torch.Tensor
    valid: torch.Tensor
    logprobs: Optional[torch.Tensor] = None
    top_ids: Optional[torch.Tensor] = None
    top_logprobs: Optional[torch.Tensor] = None


def invalid_rows_message(valid: torch.Tensor) -> str:
    rows = (~valid.cpu()).nonzero().flatten().tolist()
    return (f"rows {rows[:10]} have no valid token (every logit is -inf or NaN); pass "
            "return_valid=True to get token -1 and a validity mask for such rows instead")
