"""Keep-sets of the fused CPU kernel against the pure-torch reference (docs/semantics.md,
stages 0-5)."""
import math

import pytest
import torch

import fastsample
from helpers import assert_keep_sets_match, random_logits, tied_bf16_logits

CASES = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p-only": dict(temperature=0.8, top_p=0.9),
    "top-k-only": dict(temperature=1.0, top_k=40),
    "top-k-large": dict(temperature=1.3, top_k=2000),
    "min-p-only": dict(temperature=1.5, min_p=0.1),
    "temperature-only": dict(temperature=0.5),
    "greedy": dict(temperature=0.0, top_k=5),
    "tiny-p": dict(temperature=1.0, top_p=1e-6),
    "min-p-one": dict(temperature=1.0, min_p=1.0),
    "top-k-one": dict(temperature=2.0, top_k=1),
}


@pytest.mark.parametrize("vocab", [1, 7, 1000, 32000, 128256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", list(CASES))
def test_keep_set_matches_reference(vocab, dtype, case, device):
    logits = random_logits(3, vocab, dtype, seed=vocab, special=True, device=device)
    params = CASES[case]
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **params), **params)


@pytest.mark.parametrize("case", list(CASES))
def test_bf16_ties_everywhere(case, threads, device):
    logits = tied_bf16_logits(4, 50000, seed=1, device=device)
    params = CASES[case]
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **params), **params)


@pytest.mark.parametrize("params", [CASES["top-p-only"], dict(temperature=0.7, top_k=500, top_p=0.9)],
                         ids=["top-p", "top-k-500"])
def test_team_of_threads_equals_single_thread(params, threads, device):
    # One long row: two threads share it (a team) unless top-k is small (<= 64), where the
    # first pass is most of the work and one thread takes the row.
    logits = random_logits(1, 128256, seed=5, device=device)
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **params), **params)


def test_per_row_parameters_mixed_with_greedy(device):
    logits = random_logits(5, 5000, seed=2, device=device)
    params = dict(temperature=[0.0, 0.7, 1.0, 1.3, 0.0], top_k=[0, 50, -1, 3000, 7],
                  top_p=[1.0, 0.9, 0.5, 0.95, 0.3], min_p=[0.0, 0.05, 0.0, 0.2, 0.0])
    got = fastsample.process_logits(logits, **params)
    assert_keep_sets_match(logits, got, **params)
    assert int((got[0] > -float("inf")).sum()) == 1 and int((got[4] > -float("inf")).sum()) == 1


def test_rows_with_nan_inf_and_all_masked(device):
    x = torch.randn(4, 100, generator=torch.Generator().manual_seed(0)).to(device)
    x[0] = -float("inf")
    x[1] = float("nan")
    x[2, 10] = float("inf")
    x[2, 20] = float("inf")
    x[3, :] = float("nan")
    x[3, 42] = 1.0
    out = fastsample.process_logits(x, temperature=0.9, top_p=0.99)
    assert bool((out[0] == -float("inf")).all()) and bool((out[1] == -float("inf")).all())
    # +inf behaves as the largest finite float: exactly the two +inf tokens are kept.
    assert (out[2] > -float("inf")).nonzero().flatten().tolist() == [10, 20]
    assert (out[3] > -float("inf")).nonzero().flatten().tolist() == [42]
    res = fastsample.sample(x, temperature=0.9, top_p=0.99, seed=0, return_valid=True)
    assert res.valid.tolist() == [False, False, True, True]
    assert res.tokens[0] == -1 and res.tokens[1] == -1
    assert int(res.tokens[2]) in (10, 20) and int(res.tokens[3]) == 42


def test_strided_and_expanded_rows_and_input_untouched(device):
    base = random_logits(6, 3000, seed=3, device=device)
    strided = base[::2]  # row stride 6000
    before = strided.clone()
    got = fastsample.process_logits(strided, temperature=0.7, top_k=50)
    assert torch.equal(strided, before)
    assert_keep_sets_match(strided.contiguous(), got, temperature=0.7, top_k=50)
    col = random_logits(3000, 2, seed=4, device=device).t()  # column stride != 1: copied, then sampled
    assert_keep_sets_match(col, fastsample.process_logits(col, top_k=10), top_k=10)
    expanded = base[:1].expand(4, -1)  # row stride 0
    tokens = fastsample.sample(expanded, temperature=0.8, seed=[1, 1, 2, 2])
    assert tokens[0] == tokens[1] and tokens[2] == tokens[3]


def test_numpy_input():
    x = random_logits(2, 1000, seed=6)
    got = fastsample.process_logits(x.numpy(), top_k=10)
    assert torch.equal(got, fastsample.process_logits(x, top_k=10))
    assert fastsample.sample(x.numpy(), seed=3).tolist() == fastsample.sample(x, seed=3).tolist()


def test_empty_batch(device):
    x = torch.empty(0, 100, device=device)
    assert fastsample.sample(x).shape == (0,)
    assert fastsample.process_logits(x).shape == (0, 100)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_boundary_bin_larger_than_its_list(dtype, threads, device):
    # Rows where the top-p boundary bin holds more than kBinListCap (16384) elements: a flat
    # row (every token in bin 0) and a near-flat one. The cut then runs over the row itself.
    flat = torch.zeros(1, 40000)
    g = torch.Generator().manual_seed(11)
    near_flat = torch.rand(1, 40000, generator=g) * 0.01
    logits = torch.cat([flat, near_flat]).to(device=device, dtype=dtype)
    for top_p in (0.3, 0.9):
        params = dict(temperature=1.0, top_p=top_p)
        got = fastsample.process_logits(logits, **params)
        assert_keep_sets_match(logits, got, **params)
        assert int((got[0] > -float("inf")).sum()) == 40000  # all tied: all kept


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.999, 1 - 1e-6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_top_p_boundary_near_the_histogram_tail(top_p, dtype, threads, device):
    # The top-p pass bins distances from the maximum only below D ~ ln(p V / (1 - p)) (V tokens
    # beyond D weigh under (1 - p) / p of the maximum: the maximum alone then reaches p of the
    # total); past kMassHistRange (24) the last bin is the tail. Row 0's bulk straddles D and
    # holds ~10.8 (1 - p) / p of the maximum's mass, so the boundary lies in the bulk ~2 below
    # D (or, for p = 1 - 1e-6, in the last bin itself); row 1's bulk lies wholly beyond D: the
    # maximum alone is kept.
    vocab = 128256
    tail = math.log(top_p * vocab / (1 - top_p))
    g = torch.Generator().manual_seed(12)
    distance = torch.empty(2, vocab)
    distance[0] = tail - 4.0 + 5.0 * torch.rand(vocab, generator=g)
    distance[1] = tail + 0.5 + 0.1 * torch.rand(vocab, generator=g)
    logits = (-distance)
    logits[:, 7] = 0.0
    logits = logits.to(device=device, dtype=dtype)
    params = dict(temperature=1.0, top_p=top_p)
    got = fastsample.process_logits(logits, **params)
    assert_keep_sets_match(logits, got, **params)
    kept = (got > -float("inf")).sum(-1).tolist()
    assert kept[0] > 1 and kept[1] == 1


@pytest.mark.parametrize("top_k", [5, 50])
def test_small_top_k_over_many_tied_groups(top_k, device):
    # 600000 logits are 9375 groups of 64. Small top-k first bounds the k-th largest group
    # maximum; when more than 8192 groups reach the cheap first bound (flat or nearly flat
    # rows) it selects over every group instead, and when the top-k ties hold more than 8192
    # tokens the candidate list gives way to the general path.
    vocab = 600000
    g = torch.Generator().manual_seed(13)
    logits = torch.cat([torch.zeros(1, vocab), torch.rand(1, vocab, generator=g) * 1e-3])
    logits[1, 123456] = 5.0
    logits = logits.to(device)
    params = dict(temperature=1.0, top_k=top_k)
    got = fastsample.process_logits(logits, **params)
    assert_keep_sets_match(logits, got, **params)
    kept = (got > -float("inf")).sum(-1).tolist()
    assert kept == [vocab, top_k]


def test_keep_set_comparison_detects_errors():
    """The comparison every keep-set test relies on flags a wrong value and a wrong keep-set."""
    from fastsample.reference.verify import keep_set_mismatch
    logits = random_logits(2, 1000, seed=8)
    params = dict(temperature=0.7, top_k=50, top_p=0.9)
    good = fastsample.process_logits(logits, **params)
    assert keep_set_mismatch(logits, good, **params) is None
    wrong_value = good.clone()
    kept = (wrong_value[0] > -float("inf")).nonzero()[0, 0]
    wrong_value[0, kept] += 1.0
    assert "values differ" in keep_set_mismatch(logits, wrong_value, **params)
    dropped = good.clone()
    dropped[1, good[1].argmax()] = -float("inf")  # the top token: far from the top-p boundary
    assert "keep-set differs" in keep_set_mismatch(logits, dropped, **params)
