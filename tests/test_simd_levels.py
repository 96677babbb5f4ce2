"""The baseline (x86-64 without AVX2) kernels are a separate compilation of the same code with
different loops (no SIMD group max); run the keep-set and argmax tests on them as well."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastsample
from helpers import run_tests_with_env

HERE = Path(__file__).parent


def test_baseline_kernels_match_the_reference():
    if os.environ.get("FASTSAMPLE_SIMD") == "baseline":
        pytest.skip("already running on the baseline kernels")
    env = dict(os.environ, FASTSAMPLE_SIMD="baseline")
    check = "import fastsample; assert fastsample.build_info()['simd'] == 'baseline'"
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    code, tail = run_tests_with_env(
        {"FASTSAMPLE_SIMD": "baseline"},
        [HERE / "test_keep_sets.py", HERE / "test_row_max_groups.py"])
    assert code == 0, tail


def test_simd_level_reported():
    assert fastsample.build_info()["simd"] in ("baseline", "avx2")
