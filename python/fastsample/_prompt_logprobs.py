"""fastsample.prompt_logprobs: scoring given tokens (a prompt) with one fused pass per row."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from . import _cuda, _params, reference
from ._C import cpu_sample
from ._sampling import _LogprobOutputs
from ._sampling_params import LOGPROBS


class PromptLogprobs(NamedTuple):
    """logprobs: float32 [L], log_softmax(logits[i])[target_ids[i]] (-inf where the target is
    out of range or its logit is -inf/NaN); top_ids int64 [L, n] and top_logprobs float32 [L, n]:
    each position's n most likely tokens (most likely first; id -1 / -inf past the finite ones)."""

    logprobs: torch.Tensor
    top_ids: torch.Tensor
    top_logprobs: torch.Tensor


def prompt_logprobs(logits: Any, target_ids: Any, n: int = 0) -> PromptLogprobs:
    """Raw logprobs of `target_ids` under `logits`, for prompt scoring.

    Args:
        logits: [L, V] float32/float16/bfloat16 (position i predicts target_ids[i]); not modified.
        target_ids: int64 [L] (tensor or list), ids in [0, V).
        n: top alternatives per position, 0..20 (default 0).
    """
    logits = _params.as_logits(logits)
    length, vocab = logits.shape
    _params._check_scalar("n", n, LOGPROBS)
    targets = torch.as_tensor(target_ids, dtype=torch.int64) if not isinstance(
        target_ids, torch.Tensor) else target_ids
    if targets.dim() != 1 or targets.shape[0] != length or targets.is_floating_point():
        raise ValueError(f"target_ids must be {length} integer token ids (one per logits row), "
                         f"got shape {tuple(targets.shape)} dtype {targets.dtype}")
    targets = targets.to(device=logits.device, dtype=torch.int64).contiguous()
    if logits.device.type == "cpu" or not _params._capturing():
        bad = (targets < 0) | (targets >= vocab)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"target_ids[{i}]={int(targets[i])} is out of range; allowed: "
                             f"0 <= id < V={vocab}")
    on_cuda = _cuda.runs_on(logits.device)
    if logits.device.type != "cpu" and not on_cuda:
        out = reference.logprobs_of(logits, targets, int(n), False)
        return PromptLogprobs(*out)
    lp = _LogprobOutputs(int(n), False, length, logits.device, given=targets)
    tokens = torch.empty(length, dtype=torch.int64, device=logits.device)
    args = (1.0, 0, 0, 0, 1.0, 0, 0.0, 0, 0, 0, 0, 0)
    if on_cuda:
        _cuda.sample(logits, _params.FLOAT_DTYPES[logits.dtype], tokens, 0, args, None, lp.packed)
    else:
        cpu_sample(logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], length, vocab,
                   logits.stride(0), *args, tokens.data_ptr(), 0, 0, None, lp.packed)
    return PromptLogprobs(lp.logprob, lp.top_ids, lp.top_logprobs)
