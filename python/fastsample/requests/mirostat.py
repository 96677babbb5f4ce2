"""Mirostat (llama.cpp's `mirostat` and `mirostat_v2` samplers): each request keeps a target
surprise mu (start: 2 tau) on the device; a step truncates its distribution by mu, draws, and
moves mu by eta x (the drawn token's surprise - tau). The truncation reuses the fused filters:
  v2: keep the tokens with surprise -log2 p <= mu, i.e. epsilon_cutoff 2^-mu (the top token
      always stays);
  v1: top-k with k from Zipf's exponent s, estimated over the 100 most likely tokens
      (llama.cpp's m = 100): k = (e 2^mu / (1 - V^-e))^(1 / s), e = s - 1.
The drawn token's surprise is its processed logprob (over what the truncation keeps, as
llama.cpp renormalizes before it draws), so a batch with mirostat rows computes processed
logprobs."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ..kernel.param_table import Range

MIROSTAT = Range("0 (off), 1 (mirostat) or 2 (mirostat 2.0)", 0, 2, integer=True)
MIROSTAT_TAU = Range("a finite number >= 0", 0.0, 3.4e38)
MIROSTAT_ETA = Range("a finite number >= 0", 0.0, 3.4e38)
ESTIMATE_TOKENS = 100  # llama.cpp's m: v1 estimates s over the top 100 probabilities


@dataclass
class Plan:
    """A batch's mirostat rows (index tensors on its device) and their tau and eta (float32,
    one per entry of `rows`)."""

    rows: torch.Tensor
    v1: torch.Tensor
    v2: torch.Tensor
    tau: torch.Tensor
    eta: torch.Tensor

    @staticmethod
    def of(params: Sequence[Any], device: torch.device) -> Optional["Plan"]:
        on = [i for i, p in enumerate(params) if p.mirostat]
        if not on:
            return None
        index = lambda rows: torch.tensor(rows, dtype=torch.int64, device=device)  # noqa: E731
        value = lambda name: torch.tensor([getattr(params[i], name) for i in on],  # noqa: E731
                                          dtype=torch.float32, device=device)
        return Plan(index(on), index([i for i in on if params[i].mirostat == 1]),
                    index([i for i in on if params[i].mirostat == 2]),
                    value("mirostat_tau"), value("mirostat_eta"))


def v2_epsilon(mu: torch.Tensor) -> torch.Tensor:
    """The epsilon_cutoff that keeps surprise <= mu: 2^-mu, at most 1 (float32)."""
    return torch.exp2(-mu.float()).clamp_(max=1.0)


def v1_top_k(z: torch.Tensor, mu: torch.Tensor, vocab: int) -> torch.Tensor:
    """llama.cpp's v1 k per row: z [n, V] the step's processed logits (-inf: removed), mu [n].
    log(p_i / p_{i+1}) = z_i - z_{i+1} over the sorted top 100 (inf when p_{i+1} is 0, as
    llama.cpp's log(p / 0)); k is rounded down and kept in [1, V], NaN (0 / 0) giving 1, as
    llama.cpp's conversion does. Returns int64 [n]."""
    m = min(ESTIMATE_TOKENS, vocab)
    top = torch.topk(z.double(), m, dim=-1).values
    i = torch.arange(m - 1, dtype=torch.float64, device=z.device)
    t = torch.log((i + 2) / (i + 1))
    b = top[:, :-1] - top[:, 1:]
    s = (t * b).sum(-1) / (t * t).sum(-1) if m > 1 else torch.full_like(mu.double(), math.nan)
    e = s - 1
    k = (e * torch.exp2(mu.double()) / (1 - float(vocab) ** -e)) ** (1 / s)
    k = torch.where(torch.isnan(k), torch.ones_like(k), k).clamp(1, vocab)
    return k.floor().to(torch.int64)


def update_mu(mu: torch.Tensor, logprob: torch.Tensor, tau: torch.Tensor,
              eta: torch.Tensor) -> torch.Tensor:
    """mu - eta x (surprise - tau), surprise = -log2 p of the drawn token (its processed
    logprob, natural log); rows without a finite logprob (no valid token) keep mu."""
    surprise = -logprob.float() / math.log(2.0)
    moved = mu - eta * (surprise - tau)
    return torch.where(torch.isfinite(logprob), moved, mu)


def refusal(p) -> Optional[str]:
    """Why a request's mirostat fields cannot run together (None: they can). llama.cpp runs no
    filter beside mirostat: its truncation replaces them."""
    if p.mirostat == 0:
        return None
    if p.temperature == 0.0:
        return "mirostat samples: temperature 0 (greedy) leaves nothing to truncate"
    others = [name for name, on in (
        ("top_k", p.top_k > 0), ("top_p", p.top_p != 1.0), ("min_p", p.min_p != 0.0),
        ("top_n_sigma", p.top_n_sigma != 0.0), ("typical_p", p.typical_p != 1.0),
        ("epsilon_cutoff", p.epsilon_cutoff != 0.0), ("eta_cutoff", p.eta_cutoff != 0.0),
        ("xtc_probability", p.xtc_probability != 0.0)) if on]
    if others:
        return (f"mirostat={p.mirostat} replaces the filters (llama.cpp runs none beside it); "
                f"unset {', '.join(others)}")
    if p.logprobs is not None and p.logprobs_mode != "processed":
        return ("mirostat reads the drawn token's processed logprob: a request with mirostat "
                "returns processed logprobs (logprobs_mode='processed')")
    return None


def logprobs_mode(p) -> Optional[str]:
    """The logprobs mode a request's row needs in its batch (None: none): a mirostat row reads
    processed logprobs."""
    if p.mirostat:
        return "processed"
    return p.logprobs_mode if p.logprobs is not None else None
