"""Where the CPU kernels' threads come from (docs/design.md, "CPU threads"): the OpenMP team
torch has loaded, so a sample right after the model's forward pass runs on the threads that
pass just used instead of fighting them; fastsample's own pool when no OpenMP runtime is
loaded (or FASTSAMPLE_THREADING=pool). Without set_num_threads or FASTSAMPLE_NUM_THREADS the
kernels follow torch.get_num_threads()."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastsample
from helpers import run_tests_with_env

HERE = Path(__file__).parent
TORCH_OPENMP = "OpenMP" in torch.__config__.parallel_info().split("ATen parallel backend:")[-1]


def _threads_of_this_process():
    return len(os.listdir("/proc/self/task"))


def _team_call():
    # One long top-p row: a team of threads shares it.
    x = torch.randn(1, 70000, generator=torch.Generator().manual_seed(0)) * 3
    return fastsample.sample(x, top_p=0.9, seed=1)


@pytest.mark.skipif(not TORCH_OPENMP, reason="this torch was built without OpenMP")
def test_kernels_run_on_torchs_openmp_threads():
    assert fastsample.build_info()["cpu_threading"].startswith("openmp ")
    a = torch.randn(256, 256)
    (a @ a).sum()  # torch's team exists now
    before = _threads_of_this_process()
    _team_call()
    assert _threads_of_this_process() == before, "fastsample started threads of its own"


@pytest.mark.skipif("FASTSAMPLE_NUM_THREADS" in os.environ, reason="set explicitly here")
def test_thread_count_follows_torch_until_set():
    n = torch.get_num_threads()
    try:
        assert fastsample.get_num_threads() == n
        torch.set_num_threads(1)
        assert fastsample.get_num_threads() == 1
        fastsample.set_num_threads(3)
        assert fastsample.get_num_threads() == 3
        fastsample.set_num_threads(None)
        assert fastsample.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)
        fastsample.set_num_threads(None)
    assert fastsample.get_num_threads() == n


def test_environment_variable_sets_the_thread_count():
    env = dict(os.environ, FASTSAMPLE_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", "import fastsample; "
                          "print(fastsample.get_num_threads())"], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "3"


def test_own_pool_when_asked():
    # The pool's workers are the threads fastsample adds; the suites that exercise threads run
    # on it too.
    code = ("import os, torch, fastsample; "
            "assert fastsample.build_info()['cpu_threading'] == 'pool'; "
            "x = torch.randn(1, 70000) * 3; (x * 2).sum(); fastsample.set_num_threads(2); "
            "before = len(os.listdir('/proc/self/task')); fastsample.sample(x, top_p=0.9, seed=1); "
            "assert len(os.listdir('/proc/self/task')) == before + 1")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, FASTSAMPLE_THREADING="pool"))
    code, tail = run_tests_with_env(
        {"FASTSAMPLE_THREADING": "pool"},
        [HERE / "test_sampling.py", HERE / "test_concurrency.py", HERE / "test_keep_sets.py",
         HERE / "test_fuzz_regressions.py"],
        ("cpu_threading", "pool"))
    assert code == 0, tail
