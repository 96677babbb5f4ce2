"""The result types of fastsample.sample and fastsample.verify, and the error for rows they
cannot sample."""
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


class VerifyOutput(NamedTuple):
    """What `fastsample.verify` returns (B requests, S drafts each).

    tokens: int64 [B, S + 1], the accepted drafts in order, then the token emitted after them
        (drawn from the residual at the first rejection, or the bonus token after every draft
        of the path was accepted); -1 after it.
    num_accepted: int64 [B], how many drafts were accepted (the row emits num_accepted + 1
        tokens; for a tree, the length of the accepted path).
    accepted_index: int64 [B, S], the draft indices of the accepted path in order (a chain's
        are 0 .. num_accepted - 1), -1 after: which draft positions' KV entries to keep.
    valid: bool [B], False where a node on the path had no valid token (its token is -1).
    logprobs: float32 [B, S + 1], each emitted token's logprob at its position (logprobs_mode
        as in sample), -inf after the last; top_ids int64 [B, S + 1, n] and top_logprobs
        float32 [B, S + 1, n] beside them (-1 / -inf after the last), or None.
    probs: float32 [B, S + 1, V], each position's distribution p (what sample would draw from
        there, on the path of the draft it follows; for a tree, position j holds node j's:
        the root, then each draft's), or None unless return_probs.
    """

    tokens: torch.Tensor
    num_accepted: torch.Tensor
    accepted_index: torch.Tensor
    valid: torch.Tensor
    logprobs: Optional[torch.Tensor] = None
    top_ids: Optional[torch.Tensor] = None
    top_logprobs: Optional[torch.Tensor] = None
    probs: Optional[torch.Tensor] = None


def invalid_rows_message(valid: torch.Tensor) -> str:
    rows = (~valid.cpu()).nonzero().flatten().tolist()
    return (f"rows {rows[:10]} have no valid token (every logit is -inf or NaN); pass "
            "return_valid=True to get token -1 and a validity mask for such rows instead")
