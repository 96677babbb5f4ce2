"""The CPU kernels copy an edited row's keys (penalties, bias, masks) and edit the copy;
the CUDA kernels read it through its patch list (PatchedView), which no GPU here runs. The same
shared code reads it both ways on the CPU: FASTSAMPLE_CPU_EDITED_ROWS=patched selects the CUDA
kernels' way, and the stage 1-3 and logprob tests run on it too."""
import os
from pathlib import Path

import pytest

import fastsample
from helpers import run_tests_with_env

HERE = Path(__file__).parent


def test_cpu_writes_edited_rows_out_by_default():
    expected = os.environ.get("FASTSAMPLE_CPU_EDITED_ROWS") == "patched"
    assert fastsample.build_info()["cpu_edited_rows"] == ("patched" if expected else "dense")


def test_patched_edited_rows_match_the_reference():
    if os.environ.get("FASTSAMPLE_CPU_EDITED_ROWS") == "patched":
        pytest.skip("already reading edited rows through their patches")
    code, tail = run_tests_with_env(
        {"FASTSAMPLE_CPU_EDITED_ROWS": "patched"},
        [HERE / "test_penalties.py", HERE / "test_logprobs.py", HERE / "test_top_n_sigma.py",
         HERE / "test_xtc.py", HERE / "test_entropy_filters.py",
         HERE / "test_no_repeat_ngram.py", HERE / "test_sequence_bias.py",
         HERE / "test_begin_suppress.py", HERE / "test_dry.py"],
        ("cpu_edited_rows", "patched"))
    assert code == 0, tail
