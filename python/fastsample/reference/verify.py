"""Comparing a backend's output with the reference under docs/semantics.md's tolerances; used by the
test suite and by `python -m fastsample selftest`."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

from . import contract as reference
from ..kernel.param_table import BY_NAME

# Top-p keep-sets may differ only for tokens whose cumulative mass (the mass of every token
# ranked above them) lies within this of the boundary; everything else must be exact.
TOP_P_MASS_TOL = 1e-4
# Typical-p may also differ for tokens whose distance from the typical z lies within this of the
# last kept one's (the kernels compute the target to 2^-17), and epsilon and eta for tokens whose
# probability lies within this relative part of the cutoff.
TYPICAL_DISTANCE_TOL = 1e-4
CUTOFF_REL_TOL = 1e-4


def _row_value(v: Any, row: int) -> Any:
    if isinstance(v, (list, tuple)):
        return v[row]
    if isinstance(v, torch.Tensor) and v.dim() == 1:
        return v[row].item()
    return v


FILTERS = ("temperature", "top_k", "top_p", "min_p", "top_n_sigma", "typical_p", "epsilon_cutoff",
           "eta_cutoff")
# The filters that measure the keep-set's distribution, after the lower bounds.
ENTROPY_FILTERS = ("typical_p", "epsilon_cutoff", "eta_cutoff")
# Keywords that are neither lower-bound filters nor stage 1-3 edits.
OTHERS = ("xtc_threshold", "xtc_probability", "seed", "offset", "generator")


def keep_set_mismatch(logits: torch.Tensor, got: torch.Tensor, **params: Any) -> Optional[str]:
    """got: process_logits output for `logits` [B, V] with `params` (the filters as scalars or
    per row, and any stage 1-3 keywords). Returns None when its values and keep-set match the
    reference, else what differs."""
    want = reference.process_logits(logits, **params).to(got.device)
    got_keep = got > -math.inf
    want_keep = want > -math.inf
    both = got_keep & want_keep
    if not torch.equal(got[both], want[both]):
        return "kept values differ from z = x / T"
    diff = got_keep ^ want_keep
    if not bool(diff.any()):
        return None
    filters = {k: params[k] for k in FILTERS if k in params}
    edits = reference.edits_of(logits, {k: v for k, v in params.items()
                                        if k not in FILTERS and k not in OTHERS})
    _, z, _, _, greedy = reference.keep_set(logits, edits=edits, **filters)
    # The top-k and top-n-sigma survivors over which top-p measures mass.
    _, _, k_keep, _, _ = reference.keep_set(logits, filters.get("temperature", 1.0),
                                            filters.get("top_k", 0), edits=edits,
                                            top_n_sigma=filters.get("top_n_sigma", 0.0))
    top_p = filters.get("top_p", 1.0)
    diff, z, k_keep = diff.cpu(), z.cpu(), k_keep.cpu()
    entropy_rows = _entropy_boundary(logits, edits, filters, diff)
    for row in diff.any(dim=1).nonzero().flatten().tolist():
        if row in entropy_rows:
            problem = entropy_rows[row]
            if problem is not None:
                return problem
            continue
        p = float(_row_value(top_p, row))
        if p >= 1.0 or bool(greedy[row]):
            return f"row {row}: keep-sets differ without top-p at {diff[row].nonzero()[:5].flatten().tolist()}"
        zr = z[row].double()
        q = torch.where(k_keep[row], torch.exp(zr - zr[k_keep[row]].max()), torch.zeros_like(zr))
        q = q / q.sum()
        for tok in diff[row].nonzero().flatten().tolist():
            above = float(q[zr > zr[tok]].sum())
            if abs(above - p) > TOP_P_MASS_TOL:
                return (f"row {row} token {tok}: keep-set differs with mass above {above:.6g} "
                        f"vs top_p {p}")
    return None


def _entropy_boundary(logits: torch.Tensor, edits: Any, filters: dict,
                      diff: torch.Tensor) -> dict:
    """For the rows that differ and use typical-p, epsilon or eta: None when every differing
    token lies at one of their boundaries (within the tolerances above), else what differs."""
    on = {name: filters.get(name, BY_NAME[name].off) for name in ENTROPY_FILTERS}
    lower = {k: v for k, v in filters.items() if k not in ENTROPY_FILTERS}
    rows = {}
    for row in diff.any(dim=1).nonzero().flatten().tolist():
        values = {name: float(_row_value(v, row)) for name, v in on.items()}
        if values == {name: float(BY_NAME[name].off) for name in ENTROPY_FILTERS}:
            continue
        rows[row] = _entropy_row_problem(logits, edits, lower, values, row, diff[row])
    return rows


def _entropy_row_problem(logits, edits, lower, values, row, diff_row) -> Optional[str]:
    # The reference's input to each of the three filters in turn.
    stage = dict(typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0)
    inputs = []
    for name in ENTROPY_FILTERS:
        _, z, keep, _, greedy = reference.keep_set(logits, edits=edits, **lower, **stage)
        inputs.append(keep[row].cpu())
        stage[name] = values[name]
    if bool(greedy[row]):
        return f"row {row}: a greedy row's keep-set differs"
    z = z[row].cpu().double()
    typical_in, epsilon_in, eta_in = inputs
    for tok in diff_row.nonzero().flatten().tolist():
        near = []
        if values["typical_p"] < 1.0:
            q = _probabilities(z, typical_in)
            logq = torch.where(typical_in, q.log(), torch.full_like(q, -math.inf))
            entropy = -float((q[typical_in] * logq[typical_in]).sum())
            shifted = torch.where(typical_in, (-logq - entropy).abs(), torch.full_like(q, math.inf))
            closer = float(q[shifted < shifted[tok]].sum())
            ranked, order = shifted.sort(stable=True)
            cum = q[order].cumsum(0)
            cut = float(ranked[int((cum < values["typical_p"]).sum().clamp(max=len(q) - 1))])
            near.append(abs(closer - values["typical_p"]) <= TOP_P_MASS_TOL
                        or abs(float(shifted[tok]) - cut) <= TYPICAL_DISTANCE_TOL)
        if values["epsilon_cutoff"] > 0.0:
            q = _probabilities(z, epsilon_in)
            near.append(abs(float(q[tok]) - values["epsilon_cutoff"])
                        <= CUTOFF_REL_TOL * values["epsilon_cutoff"])
        if values["eta_cutoff"] > 0.0:
            q = _probabilities(z, eta_in)
            entropy = -float((q[eta_in] * q[eta_in].log()).sum())
            eta = min(values["eta_cutoff"], math.sqrt(values["eta_cutoff"]) * math.exp(-entropy))
            near.append(abs(float(q[tok]) - eta) <= CUTOFF_REL_TOL * eta)
        if not any(near):
            return (f"row {row} token {tok}: keep-set differs away from the typical-p, epsilon "
                    f"and eta boundaries ({values})")
    return None


def _probabilities(z: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    q = torch.where(keep, torch.exp(z - z[keep].max()), torch.zeros_like(z))
    return q / q.sum()
