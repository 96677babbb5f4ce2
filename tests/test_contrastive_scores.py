"""fastsample.contrastive_scores, contrastive search's fused ranking kernel
(csrc/include/fastsample/contrastive.h), against its formula in float64 and transformers' own
formula (fastsample.reference.contrastive); bad input. Also run under ASan + UBSan
(test_sanitizers.py) and, for the CUDA block code, under the host emulation
(test_cuda_emulation.py)."""
import pytest
import torch

import fastsample


def _scores_by_formula(context, mask, candidates, probs, alpha):
    """(1 - alpha) p - alpha max over counted positions of cos, one candidate at a time."""
    B, k, _ = candidates.shape
    out = torch.empty(B, k, dtype=torch.float64)
    for b in range(B):
        for j in range(k):
            cos = [torch.nn.functional.cosine_similarity(context[b, s].double(),
                                                         candidates[b, j].double(), dim=0)
                   for s in range(context.shape[1]) if mask[b, s]]
            out[b, j] = (1 - alpha[b]) * probs[b, j] - alpha[b] * max(cos)
    return out


def test_contrastive_scores_follow_the_formula():
    g = torch.Generator().manual_seed(0)
    B, L, k, D = 3, 7, 5, 16
    context = torch.randn(B, L, D, generator=g)
    candidates = torch.randn(B, k, D, generator=g)
    candidates[1, 2] = context[1, 4] * 3.0  # identical direction: cos 1
    mask = torch.ones(B, L, dtype=torch.int64)
    mask[0, :3] = 0  # left padding never counts
    context[0, :3] = candidates[0, 0]  # ... even where it would be the most similar
    probs = torch.softmax(torch.randn(B, k, generator=g), -1)
    probs[2, 4] = 0.0  # a candidate the row does not keep
    alpha = [0.6, 0.0, 1.0]
    got = fastsample.contrastive_scores(context, mask, candidates, probs, torch.tensor(alpha))
    want = _scores_by_formula(context, mask, candidates, probs, alpha)
    assert got.dtype == torch.float32
    assert torch.isinf(got[2, 4]) and got[2, 4] < 0
    keep = torch.isfinite(got)
    torch.testing.assert_close(got[keep].double(), want[keep], atol=1e-6, rtol=0)
    scalar = fastsample.contrastive_scores(context, mask, candidates, probs, 0.6)
    torch.testing.assert_close(scalar[0], got[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("B,L,k,D", [(1, 1, 1, 1), (2, 5, 3, 33), (3, 40, 64, 100),
                                     (4, 17, 7, 256)])
def test_contrastive_scores_kernel_equals_the_formula(dtype, B, L, k, D):
    """The fused kernel against transformers' formula (fastsample.reference) and against the
    formula in float64 over the same (exactly widened) values; strided hidden states (a slice
    of a wider buffer, as a model's hidden_states[-1][:, :L] is) read in place. Tolerance: the
    float32 rounding of cosines, 2e-6 (float64 formula) and 1e-5 (transformers' formula in the
    hidden states' dtype: loose for float16 / bfloat16, whose normalized vectors round)."""
    g = torch.Generator().manual_seed(B * 1000 + D)
    wide = torch.randn(B, L + 3, D + 5, generator=g).to(dtype)
    context = wide[:, 2:2 + L, 1:1 + D]
    candidates = torch.randn(B, k, D, generator=g).to(dtype)
    mask = (torch.rand(B, L, generator=g) < 0.8).to(torch.int64)
    mask[:, -1] = 1
    probs = torch.softmax(torch.randn(B, k, generator=g), -1)
    alpha = torch.rand(B, generator=g, dtype=torch.float64)
    got = fastsample.contrastive_scores(context, mask, candidates, probs, alpha)
    want = _scores_by_formula(context.float(), mask, candidates.float(), probs, alpha.tolist())
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=0)
    oracle = fastsample.reference.contrastive.contrastive_scores(
        context.float(), mask, candidates.float(), probs, alpha)
    torch.testing.assert_close(got, oracle, atol=1e-5, rtol=0)


def test_contrastive_scores_zero_vectors_and_unkept_candidates():
    """A zero hidden state's cosine (0 / 0) counts as 1 (the most similar); a candidate with
    probability 0 scores -inf; a row whose mask counts nothing scores as transformers' mask
    makes it (every cosine the float minimum)."""
    context = torch.randn(2, 4, 8, generator=torch.Generator().manual_seed(1))
    candidates = torch.randn(2, 2, 8, generator=torch.Generator().manual_seed(2))
    candidates[0, 1] = 0.0
    probs = torch.tensor([[0.5, 0.5], [0.7, 0.0]])
    mask = torch.ones(2, 4)
    got = fastsample.contrastive_scores(context, mask, candidates, probs, 0.5)
    assert got[0, 1].item() == pytest.approx(0.5 * 0.5 - 0.5 * 1.0)
    assert got[1, 1].item() == -float("inf")
    empty = fastsample.contrastive_scores(context, torch.zeros(2, 4), candidates, probs, 0.5)
    assert empty[0, 0].item() == pytest.approx(0.25 + 0.5 * 3.4028234663852886e38, rel=1e-6)


@pytest.mark.parametrize("change,message", [
    (dict(candidates=torch.randn(2, 65, 8), probs=torch.full((2, 65), 0.01)),
     "k \\(candidates.shape\\[1\\]\\)=65 is out of range"),
    (dict(candidates=torch.randn(2, 3, 8, dtype=torch.float16)),
     "context and candidates must share one of float32, float16, bfloat16"),
    (dict(context=torch.randn(2, 5, 8, dtype=torch.float64),
          candidates=torch.randn(2, 3, 8, dtype=torch.float64)), "must share one of"),
    (dict(context=torch.zeros(2, 3)), "context must be \\[B, L, D\\]"),
    (dict(probs=torch.zeros(2, 4)), "probs \\[B, k\\] = \\(2, 3\\)"),
    (dict(alpha=1.5), "penalty_alpha=1.5 is out of range"),
    (dict(alpha=torch.tensor([0.5, 2.0])), "penalty_alpha must be a float in \\[0, 1\\]"),
])
def test_contrastive_scores_reject_bad_input(change, message):
    args = dict(context=torch.randn(2, 5, 8), mask=torch.ones(2, 5),
                candidates=torch.randn(2, 3, 8), probs=torch.full((2, 3), 1 / 3), alpha=0.5)
    args.update(change)
    with pytest.raises((ValueError, TypeError), match=message):
        fastsample.contrastive_scores(args["context"], args["mask"], args["candidates"],
                                      args["probs"], args["alpha"])


def test_contrastive_scores_a_cosine_that_is_not_finite_counts_as_one():
    """float32 elements of 1e-25 square to 0 (the norm is 0) while their products with the
    candidate do not: the cosine x / 0 is infinite, and counts as 1 (most similar), as a zero
    vector's 0 / 0 does."""
    context = torch.full((1, 2, 4), 1e-25)
    context[0, 1] = -1.0
    candidates = torch.ones(1, 2, 4)
    candidates[0, 1] = -1.0
    probs = torch.tensor([[0.6, 0.4]])
    for alpha in (0.0, 0.3, 1.0):
        got = fastsample.contrastive_scores(context, torch.ones(1, 2), candidates, probs, alpha)
        want = torch.tensor([[(1 - alpha) * 0.6 - alpha, (1 - alpha) * 0.4 - alpha]])
        torch.testing.assert_close(got, want)
        oracle = fastsample.reference.contrastive.contrastive_scores(
            context, torch.ones(1, 2), candidates, probs, alpha)
        torch.testing.assert_close(oracle, want)
