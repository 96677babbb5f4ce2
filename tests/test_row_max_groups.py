"""The first pass reads rows in groups of 64 logits (csrc/include/fastsample/common.h, kGroup):
argmax ties across and inside groups, a partial last group, and the values that sanitize to the
same key (+inf and the largest float, -0 and +0) must all give the reference's token."""
import math

import pytest
import torch

import fastsample
from fastsample import reference

F32_MAX = torch.finfo(torch.float32).max


def _greedy_both(x):
    return fastsample.sample(x, temperature=0.0), reference.sample(x, temperature=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("vocab", [63, 64, 65, 1000, 40000])
def test_argmax_position_in_every_group_place(dtype, vocab, threads):
    positions = sorted({0, 1, 62, 63, 64, vocab // 2, vocab - 2, vocab - 1} & set(range(vocab)))
    x = torch.full((len(positions), vocab), -5.0)
    for row, pos in enumerate(positions):
        x[row, pos] = 3.0
        x[row, (pos * 7 + 5) % vocab] = 2.5 if (pos * 7 + 5) % vocab != pos else 3.0
    x = x.to(dtype)
    got, want = _greedy_both(x)
    assert got.tolist() == want.tolist() == positions


@pytest.mark.parametrize("vocab", [130, 40000])
def test_ties_across_groups_take_the_first(vocab, threads):
    x = torch.zeros(3, vocab)
    x[0, [vocab - 1, 70, 129]] = 1.0       # equal maxima in different groups
    x[1, vocab - 1] = math.inf             # +inf ties with the largest float, which comes first
    x[1, 65] = F32_MAX
    x[2] = -0.0                            # -0 and +0 are equal: the first one wins
    x[2, 100] = 0.0
    got, want = _greedy_both(x)
    assert got.tolist() == want.tolist() == [70, 65, 0]


def test_nan_never_wins_a_group():
    x = torch.full((2, 200), -1.0)
    x[0, :64] = math.nan                   # one whole group of NaN
    x[0, 150] = -0.5
    x[1, 10] = math.nan
    x[1, 11] = -0.25
    got, want = _greedy_both(x)
    assert got.tolist() == want.tolist() == [150, 11]


@pytest.mark.parametrize("top_k", [1, 5, 50, 1024])
def test_small_k_candidates_when_groups_are_fewer_than_k(top_k):
    # V=1000 has 16 groups: for k > 16 the candidate bound is unavailable and the general path
    # runs; for k <= 16 the list path runs. Both must give the reference's keep-set.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 1000, generator=g) * 2
    got = fastsample.process_logits(x, temperature=0.9, top_k=top_k) > -math.inf
    want = reference.keep_set(x, 0.9, top_k, 1.0, 0.0)[2]
    assert torch.equal(got, want)
