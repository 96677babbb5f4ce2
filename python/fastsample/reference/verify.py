"""Comparing a backend's output with the reference under docs/semantics.md's tolerances; used by the
test suite and by `python -m fastsample selftest`."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch

from . import contract as reference

# Top-p keep-sets may differ only for tokens whose cumulative mass (the mass of every token
# ranked above them) lies within this of the boundary; everything else must be exact.
TOP_P_MASS_TOL = 1e-4


def _row_value(v: Any, row: int) -> Any:
    if isinstance(v, (list, tuple)):
        return v[row]
    if isinstance(v, torch.Tensor) and v.dim() == 1:
        return v[row].item()
    return v


FILTERS = ("temperature", "top_k", "top_p", "min_p", "top_n_sigma")
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
    for row in diff.any(dim=1).nonzero().flatten().tolist():
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
