import pytest
import torch

import fastsample
from fastsample.kernel import cuda


def _cuda_skip_reason():
    if not cuda.COMPILED:
        return "fastsample was built without CUDA (FASTSAMPLE_CUDA=OFF or no nvcc)"
    if not torch.cuda.is_available():
        return "no CUDA GPU on this machine (torch.cuda.is_available() is False)"
    return None


CUDA_SKIP = _cuda_skip_reason()
requires_cuda = pytest.mark.skipif(CUDA_SKIP is not None, reason=CUDA_SKIP or "")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=requires_cuda)])
def device(request):
    """The backends a test runs on: the CPU kernels, and the CUDA kernels when a GPU is here."""
    return torch.device(request.param)


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    """Runs a test with one CPU thread and with a team of two (same results expected)."""
    fastsample.set_num_threads(request.param)
    yield request.param
    fastsample.set_num_threads(None)  # follow torch again, as by default
