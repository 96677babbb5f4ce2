"""A small CUDA workload for compute-sanitizer (memcheck, racecheck): every kernel and path once,
small enough (--small) to run under the sanitizer in a minute. Run by .ci/gpu-check; exits non-zero when a
result disagrees with the CPU kernels."""
import sys

import torch

import fastsample


def main(small: bool) -> int:
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    failures = []
    hist = torch.randint(0, 3000, (5, 30), generator=g)
    edits = dict(repetition_penalty=1.3, frequency_penalty=0.5, presence_penalty=0.2,
                 prompt_token_ids=hist, output_token_ids=hist.flip(1), logit_bias={7: 5.0},
                 banned_token_ids=[1, 2], allowed_token_ids=[None, list(range(100)), None,
                                                             None, [5, 6]],
                 min_tokens=3, eos_token_id=0, num_generated=[0, 1, 2, 3, 4])
    dtypes = (torch.float32, torch.bfloat16) if small else (torch.float32, torch.float16,
                                                             torch.bfloat16)
    for dtype in dtypes:
        for vocab in (1, 3000, 9000) if small else (1, 3000, 70000):
            x = (torch.randn(5, vocab, generator=g) * 3).to(dtype)
            for kw in (dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
                       dict(temperature=0.8, top_p=0.9), dict(temperature=0.0)):
                extra = edits if vocab == 3000 else {}
                for mode in ("raw", "processed"):
                    want = fastsample.sample(x, seed=[1, 2, 3, 4, 5], logprobs=3,
                                             logprobs_mode=mode, **kw, **extra)
                    got = fastsample.sample(x.to(dev), seed=[1, 2, 3, 4, 5], logprobs=3,
                                            logprobs_mode=mode, **kw, **extra)
                    if not torch.equal(got.tokens.cpu(), want.tokens):
                        failures.append(f"sample {dtype} V={vocab} {kw} {mode} edits={bool(extra)}")
                want = fastsample.process_logits(x, **kw, **extra)
                got = fastsample.process_logits(x.to(dev), **kw, **extra)
                if not torch.equal(got.cpu(), want):
                    failures.append(f"process_logits {dtype} V={vocab} {kw} edits={bool(extra)}")
    # More rows than resident blocks: blocks loop over rows and reuse their scratch.
    x = torch.randn(600, 512, generator=g)
    want = fastsample.sample(x, top_p=0.9, seed=list(range(600)))
    got = fastsample.sample(x.to(dev), top_p=0.9, seed=list(range(600)))
    if not torch.equal(got.cpu(), want):
        failures.append("600 rows")
    # A captured graph replayed with device parameters.
    xd = torch.randn(4, 5000, generator=g).to(dev)
    temp = torch.full((4,), 0.8, device=dev)
    seed = torch.arange(4, device=dev)
    offset = torch.zeros(4, dtype=torch.int64, device=dev)
    fastsample.sample(xd, temperature=temp, top_p=0.9, seed=seed, offset=offset)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fastsample.sample(xd, temperature=temp, top_p=0.9, seed=seed, offset=offset,
                                return_valid=True)
    for step in range(3):
        offset.fill_(step)
        graph.replay()
        want = fastsample.sample(xd.cpu(), temperature=0.8, top_p=0.9, seed=[0, 1, 2, 3],
                                 offset=step)
        if not torch.equal(out.tokens.cpu(), want):
            failures.append(f"graph replay step {step}")
    torch.cuda.synchronize()
    for f in failures:
        print("MISMATCH", f)
    print(f"gpu_workload: {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main("--small" in sys.argv))
