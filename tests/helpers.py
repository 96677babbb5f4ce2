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


def assert_keep_sets_match(logits, got, **params):
    """got: fastsample.process_logits output. Compares its keep-set and values to the reference,
    allowing keep-set differences only at the top-p boundary within TOP_P_MASS_TOL."""
    problem = keep_set_mismatch(logits, got, **params)
    assert problem is None, problem


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
