import os

import pytest
import torch


def bench_device():
    """The device the README's benchmark command measures: FASTSAMPLE_BENCH_DEVICE (cpu|cuda),
    else the GPU when one is present, else the CPU."""
    return os.environ.get("FASTSAMPLE_BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def pytest_collection_modifyitems(config, items):
    # Benchmarks are run on purpose (docs/performance.md), never as part of the test suite.
    device = bench_device()
    for item in items:
        item.add_marker(pytest.mark.benchmark)
        if getattr(item.module, "DEVICE", device) != device:
            item.add_marker(pytest.mark.skip(
                reason=f"benchmarking {device} (set FASTSAMPLE_BENCH_DEVICE to choose)"))
