"""Shared test inputs and the tolerance-aware keep-set comparison."""
import math

import torch

import fastsample

# SEMANTICS.md tolerances: top-p keep-sets may differ only for tokens whose cumulative mass (the
# mass of all tokens ranked above them) is within 1e-4 of the boundary; everything else is exact.
TOP_P_MASS_TOL = 1e-4


def random_logits(batch, vocab, dtype=torch.float32, seed=0, scale=3.0, special=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, vocab, generator=g) * scale
    if special and vocab > 4:
        x[0, 1] = float("nan")
        x[0, 2] = -math.inf
        if batch > 1:
            x[1, 3] = math.inf
        if batch > 2:
            x[2, : vocab // 2] = -math.inf
    return x.to(dtype)


def tied_bf16_logits(batch, vocab, seed=0):
    """bfloat16 logits drawn from few distinct values: every threshold sits on a tie."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-8, 9, (batch, vocab), generator=g).to(torch.float32).div(2).to(torch.bfloat16)


def assert_keep_sets_match(logits, got, **params):
    """got: fastsample.process_logits output. Compares its keep-set and values to the reference,
    allowing keep-set differences only at the top-p boundary within TOP_P_MASS_TOL."""
    want = fastsample.reference.process_logits(logits, **params)
    got_keep = got > -math.inf
    want_keep = want > -math.inf
    both = got_keep & want_keep
    assert torch.equal(got[both], want[both]), "kept values differ from z = x / T"
    diff = got_keep ^ want_keep
    if not bool(diff.any()):
        return
    top_p = params.get("top_p", 1.0)
    assert top_p < 1.0, f"keep-sets differ without top-p at {diff.nonzero()[:5].tolist()}"
    _, z, _, _, _ = fastsample.reference.keep_set(logits, **params)
    for row in diff.any(dim=1).nonzero().flatten().tolist():
        p = top_p[row] if isinstance(top_p, (list, tuple)) else float(top_p)
        k_params = dict(params, top_p=1.0, min_p=0.0)
        k_keep = fastsample.reference.process_logits(logits[row : row + 1], **{
            k: (v[row : row + 1] if isinstance(v, (list, tuple)) else v) for k, v in k_params.items()
        })[0] > -math.inf
        zr = z[row].double()
        q = torch.where(k_keep, torch.exp(zr - zr[k_keep].max()), torch.zeros_like(zr))
        q = q / q.sum()
        for tok in diff[row].nonzero().flatten().tolist():
            above = float(q[zr > zr[tok]].sum())
            assert abs(above - p) <= TOP_P_MASS_TOL, (
                f"row {row} token {tok}: keep-set differs with mass above {above} vs top_p {p}"
            )
