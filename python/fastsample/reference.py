"""The sampling contract (docs/semantics.md) in plain torch, read line by line.

This is the test oracle and the fallback for devices without compiled kernels. It favours
clarity over speed: it sorts, and it computes probabilities in float64.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

from . import _params, _philox
from ._output import SampleOutput

FLT_MAX = torch.finfo(torch.float32).max


def sanitize(logits: torch.Tensor) -> torch.Tensor:
    """Stage 0: float32; NaN -> -inf (never sampled); +inf -> the largest finite float."""
    x = logits.to(torch.float32)
    x = torch.where(torch.isnan(x), torch.full_like(x, -math.inf), x)
    return torch.where(x == math.inf, torch.full_like(x, FLT_MAX), x)


def _rows(p: _params.Param, batch: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if p.rows is not None:
        return p.rows.to(device=device, dtype=dtype)
    return torch.full((batch,), p.scalar, device=device, dtype=dtype)


def keep_set(logits: torch.Tensor, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
             min_p: Any = 0.0):
    """Stages 0, 4 and 5. Returns (x, z, keep, valid, greedy) for logits [B, V]:
    x the sanitized logits, z = x / T, keep the bool keep-set [B, V], valid [B], greedy [B]."""
    logits = _params.as_logits(logits)
    batch, vocab = logits.shape
    dev = logits.device
    temp = _rows(_params.param("temperature", temperature, batch, _params.TEMPERATURE, dev), batch, dev, torch.float32)
    k = _rows(_params.param("top_k", top_k, batch, _params.TOP_K, dev), batch, dev, torch.int64)
    p = _rows(_params.param("top_p", top_p, batch, _params.TOP_P, dev), batch, dev, torch.float64)
    m = _rows(_params.param("min_p", min_p, batch, _params.MIN_P, dev), batch, dev, torch.float64)

    x = sanitize(logits)
    finite = x > -math.inf
    valid = finite.any(dim=1)
    greedy = temp == 0
    argmax = x.argmax(dim=1)  # first (lowest) index among equal maxima

    # Stage 4: z = x / T in float32, clamped like stage 0. Greedy rows skip stage 5.
    t_safe = torch.where(greedy, torch.ones_like(temp), temp)
    z = (x / t_safe[:, None]).clamp(max=FLT_MAX)
    z_sorted = z.sort(dim=1, descending=True, stable=True).values

    # top-k: keep z >= the k-th largest z; all ties at the boundary are kept.
    k_on = (k > 0) & (k < vocab)
    kth = z_sorted.gather(1, (k.clamp(1, vocab) - 1)[:, None])
    keep_k = finite & (~k_on[:, None] | (z >= kth))

    # top-p on the softmax of the top-k survivors: the smallest set of highest-probability
    # tokens whose mass reaches p, plus every token tied with the lowest kept value.
    z64 = z.to(torch.float64)
    zk = torch.where(keep_k, z64, torch.full_like(z64, -math.inf))
    q = torch.softmax(zk, dim=1)
    q_sorted, order = q.sort(dim=1, descending=True, stable=True)
    cum = q_sorted.cumsum(dim=1)
    first_enough = (cum < p[:, None]).sum(dim=1).clamp(max=vocab - 1)
    cut_value = z64.gather(1, order.gather(1, first_enough[:, None]))
    p_on = p < 1
    keep_p = ~p_on[:, None] | (z64 >= cut_value)

    # min-p: q_i >= m * max(q)  <=>  z_i >= max(z) + ln(m), in float32 with ln(m) rounded once.
    z_max = z.max(dim=1).values
    ln_m = torch.tensor([math.log(v) if v > 0 else -math.inf for v in m.tolist()],
                        dtype=torch.float32, device=dev)
    keep_m = z >= (z_max + ln_m)[:, None]

    keep = keep_k & keep_p & keep_m
    one_hot = torch.zeros_like(keep).scatter_(1, argmax[:, None], True)
    keep = torch.where(greedy[:, None], one_hot, keep | (one_hot & finite))
    keep &= valid[:, None]
    return x, z, keep, valid, greedy


def process_logits(logits: Any, *, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
                   min_p: Any = 0.0) -> torch.Tensor:
    """Reference for fastsample.process_logits: float32 [B, V], z on the keep-set, -inf elsewhere
    (greedy rows: the unscaled logit at the argmax)."""
    x, z, keep, _, greedy = keep_set(logits, temperature, top_k, top_p, min_p)
    kept_value = torch.where(greedy[:, None], x, z)
    return torch.where(keep, kept_value, torch.full_like(z, -math.inf))


def sample(logits: Any, *, temperature: Any = 1.0, top_k: Any = 0, top_p: Any = 1.0,
           min_p: Any = 0.0, seed: Any = None, offset: Any = None,
           generator: Optional[torch.Generator] = None, return_valid: bool = False):
    """Reference for fastsample.sample: inverse CDF over the keep-set in token order, with the
    row's Philox draw u = r / 2^64 and float64 probabilities."""
    logits = _params.as_logits(logits)
    batch = logits.shape[0]
    _, z, keep, valid, greedy = keep_set(logits, temperature, top_k, top_p, min_p)
    s = _params.seeds(seed, offset, generator, batch, torch.device("cpu"))
    seed_rows = _rows(s.seed, batch, torch.device("cpu"), torch.int64)
    offset_rows = _rows(s.offset, batch, torch.device("cpu"), torch.int64)
    randoms = _philox.row_random_u64(seed_rows.numpy().astype("uint64"), offset_rows.numpy().astype("uint64"))

    z64 = z.to(torch.float64)
    tokens = torch.full((batch,), -1, dtype=torch.int64)
    for row in range(batch):
        if not bool(valid[row]):
            continue
        kept = keep[row].cpu()
        if bool(greedy[row]):
            tokens[row] = int(kept.nonzero()[0, 0])
            continue
        zr = z64[row].cpu()
        w = torch.where(kept, torch.exp(zr - zr[kept].max()), torch.zeros_like(zr))
        cum = w.cumsum(0)
        target = randoms[row] / 2.0**64 * float(cum[-1])
        tokens[row] = int((cum <= target).sum().clamp(max=w.shape[0] - 1))
        while not bool(kept[tokens[row]]):  # a zero-mass step can land on a dropped token
            tokens[row] -= 1
    tokens = tokens.to(logits.device)
    if return_valid:
        return SampleOutput(tokens, valid)
    if not bool(valid.all()):
        raise ValueError(_invalid_rows_message(valid))
    return tokens


def _invalid_rows_message(valid: torch.Tensor) -> str:
    rows = (~valid.cpu()).nonzero().flatten().tolist()
    return (f"rows {rows[:10]} have no valid token (every logit is -inf or NaN); pass "
            "return_valid=True to get token -1 and a validity mask for such rows instead")
