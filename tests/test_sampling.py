"""The draw (docs/semantics.md, stage 6): distribution, reproducibility and batch invariance."""
import numpy as np
import pytest
import torch
from scipy import stats

import fastsample
from helpers import random_logits


def _exact_probs(logits_row, **params):
    kept = fastsample.reference.process_logits(logits_row[None], **params)[0].double()
    return torch.softmax(kept, dim=0)


@pytest.mark.parametrize("params", [
    dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    dict(temperature=0.8, top_p=0.9),
    dict(temperature=1.0),
    dict(temperature=1.7, min_p=0.02),
], ids=["hf-default", "top-p", "plain", "min-p"])
def test_chi_square_goodness_of_fit(params, device):
    """20,000 draws from one row (seeds 0..19999) against the exact keep-set distribution.
    Tolerance: reject at p < 1e-3 (fixed seeds, so the outcome is deterministic)."""
    logits = random_logits(1, 64, seed=11, scale=1.5, device=device)
    probs = _exact_probs(logits[0], **params).cpu()
    n = 20000
    batch = logits.expand(n, -1)
    tokens = fastsample.sample(batch, seed=list(range(n)), **params)
    counts = torch.bincount(tokens, minlength=64).double().cpu()
    kept = probs > 0
    assert bool((counts[~kept] == 0).all()), "a token outside the keep-set was sampled"
    expected = probs[kept] * n
    # Merge categories with few expected counts so the chi-square approximation holds.
    order = torch.argsort(expected)
    obs, exp, acc_o, acc_e = [], [], 0.0, 0.0
    for i in order.tolist():
        acc_o += float(counts[kept][i]); acc_e += float(expected[i])
        if acc_e >= 5:
            obs.append(acc_o); exp.append(acc_e); acc_o = acc_e = 0.0
    if acc_e > 0:
        obs[-1] += acc_o; exp[-1] += acc_e
    if len(obs) < 2:
        assert obs[0] == n
        return
    p_value = stats.chisquare(np.array(obs), np.array(exp)).pvalue
    assert p_value > 1e-3, f"chi-square p={p_value:.2e}"


def test_same_seed_same_tokens_and_offset_changes_draw(device):
    logits = random_logits(8, 32000, seed=12, device=device)
    a = fastsample.sample(logits, temperature=1.0, top_p=0.95, seed=1234)
    b = fastsample.sample(logits, temperature=1.0, top_p=0.95, seed=1234)
    assert torch.equal(a, b)
    draws = {tuple(fastsample.sample(logits, temperature=1.0, seed=1234, offset=o).tolist())
             for o in range(5)}
    assert len(draws) == 5


def test_generator_reproducible_for_unseeded_rows(device):
    logits = random_logits(4, 5000, seed=13, device=device)
    a = fastsample.sample(logits, generator=torch.Generator(device).manual_seed(7))
    b = fastsample.sample(logits, generator=torch.Generator(device).manual_seed(7))
    assert torch.equal(a, b)
    torch.manual_seed(3)
    c = fastsample.sample(logits)
    torch.manual_seed(3)
    assert torch.equal(c, fastsample.sample(logits))


def test_unseeded_draw_same_for_scalar_and_per_row_arguments(device):
    # Scalar arguments take a shorter validation path; both draw the rows' seeds the same way.
    logits = random_logits(6, 3000, seed=15, device=device)
    a = fastsample.sample(logits, temperature=0.9, generator=torch.Generator(device).manual_seed(9))
    b = fastsample.sample(logits, temperature=[0.9] * 6, generator=torch.Generator(device).manual_seed(9))
    c = fastsample.reference.sample(logits, temperature=0.9,
                                    generator=torch.Generator(device).manual_seed(9))
    assert torch.equal(a, b)
    assert (a == c).float().mean() >= 5 / 6  # the reference's float64 draw may differ at a boundary


@pytest.mark.parametrize("vocab", [1000, 128256])
def test_row_token_independent_of_batch(vocab, threads, device):
    """A seeded row's token does not change with batch size, position, neighbours or threads."""
    logits = random_logits(16, vocab, seed=14, device=device)
    params = dict(temperature=[0.8] * 16, top_k=[0, 50] * 8, top_p=0.9)
    seeds = list(range(100, 116))
    full = fastsample.sample(logits, seed=seeds, **params)
    for row in (0, 5, 15):
        alone = fastsample.sample(logits[row:row + 1], seed=seeds[row],
                                  temperature=0.8, top_k=params["top_k"][row], top_p=0.9)
        assert int(alone) == int(full[row])
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0)).to(device)
    shuffled = fastsample.sample(logits[perm], seed=[seeds[i] for i in perm],
                                 temperature=0.8, top_k=[params["top_k"][i] for i in perm], top_p=0.9)
    assert torch.equal(shuffled, full[perm])
    neighbours = logits.clone()
    neighbours[1:] = random_logits(15, vocab, seed=99, device=device)
    changed = fastsample.sample(neighbours, seed=seeds, **params)
    assert int(changed[0]) == int(full[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernel_token_equals_reference_token(dtype, device):
    """Same Philox draw, same inverse CDF: tokens agree except at float-rounding boundaries.
    Tolerance: at least 99.5% of 400 rows (a mismatch needs the draw within ~1e-6 of a
    cumulative-mass step)."""
    logits = random_logits(400, 4096, dtype, seed=15, device=device)
    params = dict(temperature=0.9, top_k=200, top_p=0.95, min_p=0.01)
    got = fastsample.sample(logits, seed=list(range(400)), **params)
    want = fastsample.reference.sample(logits, seed=list(range(400)), **params)
    assert float((got == want).double().mean()) >= 0.995


def test_greedy_is_argmax_lowest_index(device):
    x = torch.zeros(2, 10, device=device)
    x[0, 3] = x[0, 7] = 5.0
    x[1, 9] = 1.0
    assert fastsample.sample(x, temperature=0.0).tolist() == [3, 9]


def test_philox_known_answers():
    """Random123's published Philox4x32-10 vectors, for the kernel and the reference copy."""
    from fastsample import _C
    from fastsample.reference import philox
    vectors = [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
         (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
    ]
    for ctr, key, want in vectors:
        assert tuple(_C.philox4x32_10(*ctr, *key)) == want
        got = philox.philox4x32_10(np.array([ctr], dtype=np.uint64), np.array([key], dtype=np.uint64))
        assert tuple(int(v) for v in got[0]) == want
    for seed, offset in [(0, 0), (2**63 - 1, 12345), (42, 2**40)]:
        assert _C.philox_u64(seed, offset) == philox.row_random_u64([seed], [offset])[0]


def test_invalid_row_raises_without_return_valid(device):
    x = torch.full((2, 10), -float("inf"), device=device)
    x[0, 0] = 0.0
    with pytest.raises(ValueError, match=r"rows \[1\] have no valid token"):
        fastsample.sample(x)


def test_pool_workers_sleep_once_idle():
    """After a call, pool workers spin for a while (0.3 ms) and then sleep: a pause between
    calls, such as a model's forward pass, costs no CPU. Measured as the process's CPU time
    over 0.2 s of idle wall time; a worker still spinning would add about 0.2 s. Tolerance:
    0.05 s."""
    import time

    x = torch.randn(64, 32000, generator=torch.Generator().manual_seed(3)) * 3
    try:
        fastsample.set_num_threads(2)
        fastsample.sample(x, top_p=0.9, seed=1)  # large enough for every worker to join
        time.sleep(0.01)  # longer than any spin
        cpu0 = time.process_time()
        time.sleep(0.2)
        assert time.process_time() - cpu0 < 0.05
    finally:
        fastsample.set_num_threads(None)


def test_tokens_independent_of_worker_timing():
    """Rows are handed to whichever pool workers arrive: after pauses (workers asleep, small
    batches not waking them), in tight loops (workers spinning) and alternating with batches
    that do wake them, every call returns the tokens of a one-thread run."""
    import time

    gen = torch.Generator().manual_seed(11)
    small = torch.randn(8, 32000, generator=gen) * 3     # < 2^20 logits: sleepers stay asleep
    large = torch.randn(40, 32000, generator=gen) * 3    # >= 2^20 logits: sleepers are woken
    seeds = list(range(40))
    try:
        fastsample.set_num_threads(1)
        want = {name: fastsample.sample(x, top_k=50, top_p=0.9, seed=seeds[:x.shape[0]])
                for name, x in (("small", small), ("large", large))}
        fastsample.set_num_threads(2)
        for i in range(60):
            name = ("small", "large", "small", "small")[i % 4]
            x = small if name == "small" else large
            if i % 5 == 0:
                time.sleep(0.003)  # longer than a worker spins before it sleeps
            got = fastsample.sample(x, top_k=50, top_p=0.9, seed=seeds[:x.shape[0]])
            assert torch.equal(got, want[name]), f"call {i} ({name})"
    finally:
        fastsample.set_num_threads(None)
