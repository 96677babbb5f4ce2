"""The baseline (x86-64 without AVX2) kernels are a separate compilation of the same code with
different loops (no SIMD group max); run the keep-set and argmax tests on them as well."""
import os
from pathlib import Path

import pytest

import fastsample
from helpers import run_tests_with_env

HERE = Path(__file__).parent


def test_baseline_kernels_match_the_reference():
    if os.environ.get("FASTSAMPLE_SIMD") == "baseline":
        pytest.skip("already running on the baseline kernels")
    code, tail = run_tests_with_env(
        {"FASTSAMPLE_SIMD": "baseline"},
        [HERE / "test_keep_sets.py", HERE / "test_row_max_groups.py", HERE / "test_top_n_sigma.py",
         HERE / "test_xtc.py", HERE / "test_entropy_filters.py"],
        ("simd", "baseline"))
    assert code == 0, tail


def test_simd_level_reported():
    assert fastsample.build_info()["simd"] in ("baseline", "avx2")
