"""Shared test inputs and the tolerance-aware keep-set comparison."""
import math
import os
import subprocess
import sys

import torch

import fastsample

from fastsample.reference.verify import TOP_P_MASS_TOL, keep_set_mismatch  # noqa: F401


def random_logits(batch, vocab, dtype=torch.float32, seed=0, scale=3.0, special=False,
                  device="cpu"):
    """Standard-normal logits times `scale`, drawn on the CPU (the same values on every device)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, vocab, generator=g) * scale
    if special and vocab > 4:
        x[0, 1] = float("nan")
        x[0, 2] = -math.inf
        if batch > 1:
            x[1, 3] = math.inf
        if batch > 2:
            x[2, : vocab // 2] = -math.inf
    return x.to(device=device, dtype=dtype)


def tied_bf16_logits(batch, vocab, seed=0, device="cpu"):
    """bfloat16 logits drawn from few distinct values: every threshold sits on a tie."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-8, 9, (batch, vocab), generator=g).to(torch.float32).div(2).to(device=device, dtype=torch.bfloat16)


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's statistic of `counts` against `probs`; no count may fall where probs is 0."""
    expected = probs * counts.sum()
    on = expected > 0
    assert int(counts[~on].sum()) == 0, "a token outside the keep-set was drawn"
    return float(((counts[on] - expected[on]) ** 2 / expected[on]).sum())


def chi_square_bound(df: int) -> float:
    """The chi-square quantile for p = 0.001 (Wilson-Hilferty, z = 3.09)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + 3.09 * math.sqrt(a)) ** 3


def assert_keep_sets_match(logits, got, **params):
    """got: fastsample.process_logits output. Compares its keep-set and values to the reference,
    allowing keep-set differences only at the top-p boundary within TOP_P_MASS_TOL."""
    problem = keep_set_mismatch(logits, got, **params)
    assert problem is None, problem


def assert_kernels_equal_the_reference(x, combo):
    """process_logits and sample (both logprob modes, 4 top entries) on logits x [5, V] with
    the keywords `combo`, seeded per row, against the reference: keep-sets within the
    tolerances, tokens and top ids equal, logprobs within 1e-5, every token kept."""
    seeds = dict(seed=[1, 2, 3, 4, 5], offset=3)
    got = fastsample.process_logits(x, **combo, **seeds)
    assert_keep_sets_match(x, got, **combo, **seeds)
    for mode in ("raw", "processed"):
        a = fastsample.sample(x, return_valid=True, logprobs=4, logprobs_mode=mode, **combo,
                              **seeds)
        b = fastsample.reference.sample(x, return_valid=True, logprobs=4, logprobs_mode=mode,
                                        **combo, **seeds)
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.valid, b.valid)
        # In a row with +inf logits the others' logprobs (near -FLT_MAX) tie in float: the
        # kernels rank them by logit, the reference by id.
        plain = ~(x == math.inf).any(dim=1)
        assert torch.equal(a.top_ids[plain], b.top_ids[plain]), mode
        assert torch.allclose(a.top_logprobs, b.top_logprobs, atol=1e-5), mode
        assert torch.allclose(a.logprobs, b.logprobs, atol=1e-5), mode
        assert all(bool(got[r, t] > -math.inf) for r, t in enumerate(a.tokens.tolist()))


def assert_compile_refuses(calls, name):
    """Each of `calls` (a function of one [2, 50] tensor), traced by torch.compile, raises an
    error naming `name` instead of compiling without that parameter."""
    x = torch.randn(2, 50)
    for call in calls:
        try:
            torch.compile(call, fullgraph=True, backend="aot_eager")(x)
        except Exception as e:  # dynamo wraps the refusal in its own error types
            assert name in str(e), str(e)[-500:]
        else:
            raise AssertionError(f"torch.compile ran a call with {name} instead of refusing it")


def run_tests_with_env(env_updates, test_files, build_info_key):
    """Runs pytest on `test_files` in a fresh process with `env_updates` set (kernel variants
    chosen at import time), after checking there that build_info()[key] == value for
    build_info_key = (key, value); returns (returncode, the output's tail)."""
    env = dict(os.environ, **env_updates)
    key, value = build_info_key
    check = f"import fastsample; assert fastsample.build_info()[{key!r}] == {value!r}"
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, test_files)],
        env=env, capture_output=True, text=True)
    return result.returncode, result.stdout[-3000:] + result.stderr[-2000:]
