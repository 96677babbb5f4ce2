"""CPU kernel benchmark: fastsample beside the pure-torch reference, the Hugging Face warper chain
and one torch.amax pass (the memory-read floor), on the same logits in the same run.

Compare within a group (--benchmark-group-by=param): these machines are shared and noisy, so
only ratios between peers measured together mean anything.
"""
import os

import pytest
import torch

import fastsample

CASES = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p-only": dict(temperature=0.8, top_p=0.9),
}
BATCHES = [int(b) for b in os.environ.get("FASTSAMPLE_BENCH_BATCHES", "1,16,64").split(",")]
VOCABS = [int(v) for v in os.environ.get("FASTSAMPLE_BENCH_VOCABS", "32000,128256,256000").split(",")]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
IMPLS = ["fastsample", "floor-amax", "reference", "hf-chain"]


def _logits(batch, vocab, dtype):
    g = torch.Generator().manual_seed(0)
    # LLM-like: most logits in a broad normal bulk, a few standing well above it.
    x = torch.randn(batch, vocab, generator=g) * 3.0
    x[:, : vocab // 1000] += 8.0
    return x.to(dtype)


def _hf_chain(params):
    from transformers import (LogitsProcessorList, MinPLogitsWarper, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)
    warpers = [TemperatureLogitsWarper(params["temperature"])]
    if params.get("top_k"):
        warpers.append(TopKLogitsWarper(params["top_k"]))
    if params.get("top_p", 1.0) < 1.0:
        warpers.append(TopPLogitsWarper(params["top_p"]))
    if params.get("min_p"):
        warpers.append(MinPLogitsWarper(params["min_p"]))
    chain = LogitsProcessorList(warpers)

    def run(logits):
        scores = chain(None, logits.float())
        return torch.multinomial(torch.softmax(scores, dim=-1), 1)[:, 0]

    return run


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", list(CASES))
def test_sample(benchmark, case, batch, vocab, dtype, impl):
    params = CASES[case]
    logits = _logits(batch, vocab, DTYPES[dtype])
    benchmark.group = f"{case} B={batch} V={vocab} {dtype}"
    if impl == "fastsample":
        fn = lambda: fastsample.sample(logits, **params)  # noqa: E731
    elif impl == "floor-amax":
        fn = lambda: torch.amax(logits, -1)  # noqa: E731
    elif impl == "reference":
        if batch * vocab > 16 * 128256:
            pytest.skip("the sorting reference is too slow for this size on 2 cores")
        fn = lambda: fastsample.reference.sample(logits, **params)  # noqa: E731
    else:
        pytest.importorskip("transformers")
        run = _hf_chain(params)
        fn = lambda: run(logits)  # noqa: E731
    benchmark(fn)
