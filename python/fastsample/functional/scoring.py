"""fastsample.prompt_logprobs: scoring given tokens (a prompt) with one fused pass per row."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from .. import reference
from ..kernel import cuda, launch
from ..requests import arguments
from ..requests.sampling_params import LOGPROBS


class PromptLogprobs(NamedTuple):
    """logprobs: float32 [L], log_softmax(logits[i])[target_ids[i]] (-inf where the target is
    out of range or its logit is -inf/NaN); top_ids int64 [L, n] and top_logprobs float32 [L, n]:
    each position's n most likely tokens (most likely first; id -1 / -inf past the finite ones)."""

    logprobs: torch.Tensor
    top_ids: torch.Tensor
    top_logprobs: torch.Tensor


def _target_ids(v: Any, length: int) -> torch.Tensor:
    """target_ids as an int64 tensor [length]; TypeError/ValueError naming it otherwise."""
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "iu":
            raise TypeError(f"target_ids must be integer token ids, got a numpy array of dtype "
                            f"{v.dtype}")
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        for i, t in enumerate(v):
            if not arguments.is_int(t):
                raise TypeError(f"target_ids[{i}]={t!r}: token ids must be ints")
            if not 0 <= t < arguments.MAX_VOCAB:
                raise ValueError(f"target_ids[{i}]={t} is out of range; allowed: 0 <= id < V")
        v = torch.tensor([int(t) for t in v], dtype=torch.int64).reshape(len(v))
    elif not isinstance(v, torch.Tensor):
        raise TypeError(f"target_ids must be a list or an integer tensor of {length} token ids "
                        f"(one per logits row), got {type(v).__name__}")
    elif v.is_floating_point() or v.is_complex() or v.dtype == torch.bool or \
            v.device.type == "meta":
        raise TypeError(f"target_ids must be integer token ids, got dtype {v.dtype} on "
                        f"{v.device}")
    if v.dim() != 1 or v.shape[0] != length:
        raise ValueError(f"target_ids must be {length} token ids (one per logits row), got "
                         f"shape {tuple(v.shape)}")
    return v


def prompt_logprobs(logits: Any, target_ids: Any, n: int = 0) -> PromptLogprobs:
    """Raw logprobs of `target_ids` under `logits`, for prompt scoring.

    Args:
        logits: [L, V] float32/float16/bfloat16 (position i predicts target_ids[i]); not modified.
        target_ids: int64 [L] (tensor or list), ids in [0, V).
        n: top alternatives per position, 0..20 (default 0).
    """
    logits = arguments.as_logits(logits)
    length, vocab = logits.shape
    arguments.check_scalar("n", n, LOGPROBS)
    targets = _target_ids(target_ids, length)
    targets = targets.to(device=logits.device, dtype=torch.int64).contiguous()
    if logits.device.type == "cpu" or not cuda.device_values_trusted():
        bad = (targets < 0) | (targets >= vocab)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(f"target_ids[{i}]={int(targets[i])} is out of range; allowed: "
                             f"0 <= id < V={vocab}")
    if not launch.runs_compiled(logits):
        out = reference.logprobs_of(logits, targets, int(n), False)
        return PromptLogprobs(*out)
    lp = launch.LogprobOutputs(int(n), False, length, logits.device, given=targets)
    # Every stage 1-6 parameter off: the kernels score each row's given token.
    launch.run_sample(logits, launch.batch_args(logits), None, lp)
    return PromptLogprobs(lp.logprob, lp.top_ids, lp.top_logprobs)
