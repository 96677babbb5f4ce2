"""Threads and memory: many Python threads calling the kernels while the thread count changes
give the tokens a single-threaded run gives; the resident set stays flat over 100k calls."""
import threading

import torch

import fastsample


def _calls():
    """(name, call) pairs covering the team path (one long row), the row-per-thread path,
    edited rows, logprobs and process_logits. Each call is seeded, so its result is fixed."""
    g = torch.Generator().manual_seed(11)
    long_row = torch.randn(1, 70000, generator=g) * 3
    batch = torch.randn(6, 3000, generator=g) * 2
    hist = torch.randint(0, 3000, (6, 40), generator=g)
    return [
        ("team", lambda: fastsample.sample(long_row, top_p=0.9, seed=3)),
        ("rows", lambda: fastsample.sample(batch, temperature=0.8, top_k=100, seed=[1, 2, 3, 4,
                                                                                   5, 6])),
        ("edits", lambda: fastsample.sample(batch, top_p=0.95, seed=9, repetition_penalty=1.3,
                                            frequency_penalty=0.5, output_token_ids=hist,
                                            logit_bias={5: 3.0}, banned_token_ids=[7])),
        ("logprobs", lambda: fastsample.sample(long_row, top_p=0.8, seed=4, logprobs=5).top_ids),
        ("process", lambda: fastsample.process_logits(batch, top_k=50, top_p=0.9)),
    ]


def test_threads_and_set_num_threads_give_single_threaded_results():
    calls = _calls()
    fastsample.set_num_threads(1)
    want = {name: call() for name, call in calls}
    failures = []
    stop = threading.Event()

    def worker(offset):
        i = offset
        while not stop.is_set() and i < offset + 60:
            name, call = calls[i % len(calls)]
            if not torch.equal(call(), want[name]):
                failures.append(name)
            i += 1

    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        n = 0
        while any(t.is_alive() for t in threads):
            fastsample.set_num_threads(1 + n % 3)
            n += 1
        for t in threads:
            t.join()
    finally:
        stop.set()
        fastsample.set_num_threads(None)
    assert not failures, failures[:10]
    assert n > 0


def _rss_bytes():
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import resource
    return pages * resource.getpagesize()


def test_resident_memory_flat_over_100k_small_calls():
    # 25k calls of each kind (plain, edited with logprobs, process_logits, Sampler steps):
    # nothing the kernels, the argument packing or the Sampler keep may grow per call.
    x = torch.randn(2, 64, generator=torch.Generator().manual_seed(2))
    hist = [[1, 2, 3], [4]]
    sampler = fastsample.Sampler(64)
    kinds = [
        lambda i: fastsample.sample(x, top_p=0.9, seed=i),
        lambda i: fastsample.sample(x, seed=i, repetition_penalty=1.2, prompt_token_ids=hist,
                                    logit_bias={3: 1.0}, logprobs=2),
        lambda i: fastsample.process_logits(x, top_k=5),
        lambda i: sampler.step(x[:len(sampler)]),
    ]

    def keep_sampler_full():
        while len(sampler) < 2:
            sampler.add(object(), fastsample.SamplingParams(seed=1, max_tokens=50,
                                                            repetition_penalty=1.1), [1, 2])

    def run(n):
        for i in range(n):
            keep_sampler_full()
            kinds[i % 4](i)

    run(5000)  # warm: allocator pools, caches, first-call setup
    start = _rss_bytes()
    run(100_000)
    grown = _rss_bytes() - start
    assert grown < 8 * 2**20, f"resident set grew by {grown / 2**20:.1f} MiB over 100k calls"
