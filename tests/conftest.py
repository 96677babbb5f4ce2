import pytest
import torch

import fastsample

# The CUDA backend arrives with its own issue; until then CUDA runs are skipped with this reason.
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA GPU on this machine"
        ),
    ),
]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    """Runs a test with one CPU thread and with a team of two (same results expected)."""
    before = fastsample.get_num_threads()
    fastsample.set_num_threads(request.param)
    yield request.param
    fastsample.set_num_threads(before)
