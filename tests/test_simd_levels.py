"""The baseline (x86-64 without AVX2) kernels are a separate compilation of the same code with
different loops (no SIMD group max); run the keep-set and argmax tests on them as well."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastsample

HERE = Path(__file__).parent


def test_baseline_kernels_match_the_reference():
    if os.environ.get("FASTSAMPLE_SIMD") == "baseline":
        pytest.skip("already running on the baseline kernels")
    env = dict(os.environ, FASTSAMPLE_SIMD="baseline")
    check = "import fastsample; assert fastsample.build_info()['simd'] == 'baseline'"
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(HERE / "test_keep_sets.py"), str(HERE / "test_row_max_groups.py")],
        env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_simd_level_reported():
    assert fastsample.build_info()["simd"] in ("baseline", "avx2")
