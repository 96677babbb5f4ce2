"""CPU kernel benchmark: fastsample beside the pure-torch reference, the Hugging Face warper chain
and one torch.amax pass (the memory-read floor), on the same logits in the same run.

Compare within a group (--benchmark-group-by=param): these machines are shared and noisy, so
only ratios between peers measured together mean anything.
"""
import pytest
import torch

import fastsample
from cases import (CASES, DTYPES, EDIT_COSTS, FILTER_COSTS, PENALTY_BASE, ModelStep, env_list,
                   hf_chain, history_kwargs, make_logits, penalty_kwargs)

DEVICE = "cpu"
BATCHES = env_list("FASTSAMPLE_BENCH_BATCHES", "1,16,64")
VOCABS = env_list("FASTSAMPLE_BENCH_VOCABS", "32000,128256,256000")
IMPLS = ["fastsample", "floor-amax", "reference", "hf-chain"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", list(CASES))
def test_sample(benchmark, case, batch, vocab, dtype, impl):
    params = CASES[case]
    logits = make_logits(batch, vocab, DTYPES[dtype])
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
        run = hf_chain(params)
        fn = lambda: run(logits)  # noqa: E731
    benchmark(fn)


@pytest.mark.parametrize("impl", ["after-step", "after-step-1-thread"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("vocab", VOCABS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", list(CASES))
def test_sample_after_model_step(benchmark, case, batch, vocab, dtype, impl):
    """The same call as test_sample inside a decode loop: each round first runs a model-like
    step (ModelStep: torch's threads busy, then the logits written), and only the sample is
    timed. In the default configuration (threads as torch's), and limited to one thread."""
    params = CASES[case]
    step = ModelStep(make_logits(batch, vocab, DTYPES[dtype]))
    benchmark.group = f"{case} B={batch} V={vocab} {dtype}"
    if impl == "after-step-1-thread":
        fastsample.set_num_threads(1)
    try:
        benchmark.pedantic(lambda x: fastsample.sample(x, **params), setup=lambda: ((step(),), {}),
                           rounds=max(20, 8_000_000 // (batch * vocab)), warmup_rounds=3)
    finally:
        fastsample.set_num_threads(None)


PENALTY_BATCHES = env_list("FASTSAMPLE_BENCH_PENALTY_BATCHES", "64")


@pytest.mark.parametrize("impl", ["penalties-off", "penalties-heavy"])
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("batch", PENALTY_BATCHES)
def test_penalties(benchmark, batch, dtype, impl):
    vocab = 128256
    logits = make_logits(batch, vocab, DTYPES[dtype])
    benchmark.group = f"penalties B={batch} V={vocab} {dtype}"
    kwargs = PENALTY_BASE if impl == "penalties-off" else penalty_kwargs(batch, vocab)
    benchmark(lambda: fastsample.sample(logits, **kwargs))


@pytest.mark.parametrize("impl", ["fastsample", "hf-chain"])
@pytest.mark.parametrize("filter_name", list(FILTER_COSTS) + list(EDIT_COSTS))
def test_filter_cost(benchmark, filter_name, impl):
    """Each filter or history edit added to hf-default at B = 64, V = 128256 (float32), beside
    the transformers chain computing the same (where transformers has the warper): report.py
    prints each one's time over hf-default's."""
    batch, vocab = 64, 128256
    if filter_name in EDIT_COSTS:
        params = {**CASES["hf-default"], **history_kwargs(batch, vocab),
                  **EDIT_COSTS[filter_name]}
    else:
        params = {**CASES["hf-default"], **FILTER_COSTS[filter_name]}
    logits = make_logits(batch, vocab, torch.float32)
    benchmark.group = f"filter-cost B={batch} V={vocab} float32"
    benchmark.extra_info["filter"] = filter_name
    if impl == "fastsample":
        seeds = list(range(batch))  # XTC's coin: the same rows act in every round
        benchmark(lambda: fastsample.sample(logits, seed=seeds, **params))
        return
    pytest.importorskip("transformers")
    try:
        run = hf_chain(params)
    except ValueError as e:
        pytest.skip(str(e))
    benchmark(lambda: run(logits))
