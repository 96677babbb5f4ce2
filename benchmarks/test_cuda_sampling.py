"""GPU kernel benchmark: fastsample's CUDA kernels beside the pure-torch reference, FlashInfer's
top_k_top_p_sampling_from_logits (when flashinfer is installed), the Hugging Face chain and one
torch.amax pass (reading the logits once from HBM), on the same logits in the same run.

Each case records the mean time per call from CUDA events over a burst of calls
(extra_info["cuda_event_ms"]: device time, no host sync per call) beside pytest-benchmark's
wall-clock rounds, each round synchronized. Skipped without a GPU.
"""
import pytest
import torch

import fastsample
from fastsample.bench import peers
from cases import CASES, DTYPES, env_list, hf_chain, make_logits

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and fastsample.build_info()["cuda_enabled"]),
    reason="needs a CUDA GPU and fastsample built with CUDA",
)

DEVICE = "cuda"
BATCHES = env_list("FASTSAMPLE_BENCH_BATCHES", "1,16,64,256")
VOCABS = env_list("FASTSAMPLE_BENCH_VOCABS", "32000,128256,256000")
IMPLS = ["fastsample", "floor-amax", "reference", "flashinfer", "hf-chain"]
EVENT_ITERS = 50


def cuda_event_ms(fn, iters=EVENT_ITERS, warmup=5):
    """Mean device time per call of fn over `iters` back-to-back calls, from CUDA events."""
    for _ in range(warmup):
        fn()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / iters


def _flashinfer(params, logits):
    why = peers.unavailable("flashinfer", params, "cuda")
    if why:
        pytest.skip(why)
    return peers.make("flashinfer", params, logits)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", list(CASES))
def test_sample_cuda(benchmark, case, batch, vocab, dtype, impl):
    params = CASES[case]
    logits = make_logits(batch, vocab, DTYPES[dtype], device="cuda")
    benchmark.group = f"cuda {case} B={batch} V={vocab} {dtype}"
    if impl == "fastsample":
        fn = lambda: fastsample.sample(logits, return_valid=True, **params)  # noqa: E731
    elif impl == "floor-amax":
        fn = lambda: torch.amax(logits, -1)  # noqa: E731
    elif impl == "reference":
        fn = lambda: fastsample.reference.sample(logits, return_valid=True, **params)  # noqa: E731
    elif impl == "flashinfer":
        fn = _flashinfer(params, logits)
    else:
        pytest.importorskip("transformers")
        run = hf_chain(params)
        fn = lambda: run(logits)  # noqa: E731
    benchmark.extra_info["cuda_event_ms"] = cuda_event_ms(fn)

    def synced():
        fn()
        torch.cuda.synchronize()

    benchmark.pedantic(synced, rounds=20, warmup_rounds=3)
