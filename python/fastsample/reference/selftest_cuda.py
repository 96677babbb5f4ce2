"""The selftest's CUDA checks: every path of the CUDA kernels against the CPU kernels, bit for
bit (tokens, validity, logprobs, processed logits). The CPU kernels are checked against the
reference by the first table; these cover what only a GPU run can show: stage 1-3 edits, both
logprob modes, more rows than resident blocks, misaligned / strided / expanded rows, V = 1 and
V = 256000, per-row parameters in device memory and a replayed CUDA graph. .ci/gpu_workload.py
runs the small form under compute-sanitizer."""
from __future__ import annotations

from typing import Callable, List, Tuple

import torch

from ..kernel import cuda
from ..functional.sampling import process_logits, sample
from ..functional.speculative import verify

FILTERS = (dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
           dict(temperature=0.8, top_p=0.9), dict(temperature=0.0),
           dict(temperature=1.0, top_n_sigma=1.0, top_p=0.95),
           dict(temperature=0.9, xtc_threshold=0.02, xtc_probability=1.0),
           dict(temperature=1.0, typical_p=0.9, epsilon_cutoff=1e-5),
           dict(temperature=0.8, top_k=64, eta_cutoff=1e-3))


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    a = a.cpu()
    if a.dtype == torch.float32:
        return torch.equal(a.view(torch.int32), b.view(torch.int32))
    return torch.equal(a, b)


def _edits(batch: int, vocab: int, g: torch.Generator) -> dict:
    hist = torch.randint(0, vocab, (batch, 30), generator=g)
    allowed = [None] * batch
    allowed[1 % batch] = list(range(min(vocab, 100)))
    return dict(repetition_penalty=1.3, frequency_penalty=0.5, presence_penalty=0.2,
                prompt_token_ids=hist, output_token_ids=hist.flip(1), logit_bias={7: 5.0},
                banned_token_ids=[1, 2], allowed_token_ids=allowed,
                min_tokens=3, eos_token_id=0, num_generated=list(range(batch)),
                token_bitmask=torch.randint(-2**31, 2**31 - 1, (batch, (vocab + 31) // 32),
                                            dtype=torch.int32, generator=g) | 1)


def _compare(device: torch.device, x: torch.Tensor, layout: Callable[[torch.Tensor],
             torch.Tensor] = lambda t: t, **kw) -> str:
    """'' when sample (both logprob modes) and process_logits agree on `device` and the CPU."""
    seeds = list(range(1, x.shape[0] + 1))
    for mode in ("raw", "processed"):
        want = sample(layout(x), seed=seeds, logprobs=3, logprobs_mode=mode, **kw)
        got = _on_device(device, sample, layout(x.to(device)), seed=seeds, logprobs=3,
                         logprobs_mode=mode, **kw)
        if not _same(tuple(got), tuple(want)):
            return f"sample ({mode} logprobs) differs from the CPU kernels"
    want = process_logits(layout(x), **kw)
    got = _on_device(device, process_logits, layout(x.to(device)), **kw)
    return "" if _same(got, want) else "process_logits differs from the CPU kernels"


def _on_device(device: torch.device, fn: Callable, *args, **kw):
    """fn(*args, **kw) where its tensors are on `device`: every device-side call goes through
    here (tests/test_cuda_emulation.py routes these to the emulated kernels)."""
    return fn(*args, **kw)


def _first(problems) -> str:
    return next((p for p in problems if p), "")


def check_edits(device, g, small):
    dtypes = (torch.float32, torch.bfloat16) if small else (torch.float32, torch.float16,
                                                             torch.bfloat16)
    return _first(_compare(device, (torch.randn(5, 3000, generator=g) * 3).to(dt), **kw,
                           **_edits(5, 3000, g))
                  for dt in dtypes for kw in FILTERS)


def check_rows_beyond_resident_blocks(device, g, small):
    rows = cuda.resident_blocks(device) + 37
    x = torch.randn(rows, 512, generator=g) * 2
    return _first(_compare(device, x, **kw, **_edits(rows, 512, g)) for kw in FILTERS[:2])


def check_layouts(device, g, small):
    x = torch.randn(4, 4099, generator=g) * 3
    layouts = {"misaligned": lambda t: torch.cat([t[:, :1], t], 1)[:, 1:],
               "strided": lambda t: torch.cat([t, t, t[:, :3]], 1)[:, :4099],
               "expanded": lambda t: t[:1].expand(4, 4099)}
    for name, layout in layouts.items():
        for dtype in (torch.float32, torch.float16):
            problem = _compare(device, x.to(dtype), layout, **FILTERS[0])
            if problem:
                return f"{name} {dtype}: {problem}"
    return ""


def check_vocab_extremes(device, g, small):
    vocabs = (1, 32000) if small else (1, 256000)
    return _first(_compare(device, torch.randn(3, v, generator=g) * 3, **kw)
                  for v in vocabs for kw in FILTERS)


def check_device_parameters(device, g, small):
    x = torch.randn(6, 3000, generator=g) * 3
    per_row = dict(temperature=torch.tensor([0.0, 0.5, 0.8, 1.0, 1.3, 2.0]),
                   top_k=torch.tensor([0, 1, 5, 50, 0, 3000]),
                   top_p=torch.tensor([1.0, 0.9, 0.5, 0.99, 0.7, 1.0], dtype=torch.float64),
                   min_p=torch.tensor([0.0, 0.05, 0.1, 0.0, 0.2, 0.0]))
    seed = torch.arange(6) * 977
    offset = torch.arange(6)
    want = sample(x, seed=seed, offset=offset, return_valid=True, **per_row)
    got = _on_device(device, sample, x.to(device), seed=seed.to(device),
                     offset=offset.to(device), return_valid=True,
                     **{k: v.to(device) for k, v in per_row.items()})
    return "" if _same(tuple(got), tuple(want)) else "tokens differ from the CPU kernels"


def check_graph_replay(device, g, small):
    if device.type != "cuda":
        return ""
    x = (torch.randn(4, 5000, generator=g) * 3).to(device)
    temp = torch.full((4,), 0.8, device=device)
    seed = torch.arange(4, device=device)
    offset = torch.zeros(4, dtype=torch.int64, device=device)
    sample(x, temperature=temp, top_p=0.9, seed=seed, offset=offset)  # warm up off the graph
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = sample(x, temperature=temp, top_p=0.9, seed=seed, offset=offset, return_valid=True)
    for step in range(3):
        offset.fill_(step)
        graph.replay()
        want = sample(x.cpu(), temperature=0.8, top_p=0.9, seed=[0, 1, 2, 3], offset=step)
        if not torch.equal(out.tokens.cpu(), want):
            return f"replay {step}: tokens differ from the CPU kernels"
    return ""


def check_verify(device, g, small):
    """Speculative verification of chains and a tree, with proposals and penalties over each
    node's path: verdicts, tokens and logprobs as the CPU kernels'."""
    for batch, drafts, vocab, tree in ((4, 3, 3000, False), (3, 5, 2000, True)):
        target = torch.randn(batch, drafts + 1, vocab, generator=g) * 3
        q = torch.softmax(torch.randn(batch, drafts, vocab, generator=g) * 3, dim=2)
        tokens = torch.multinomial(q.reshape(-1, vocab), 1, generator=g).reshape(batch, drafts)
        tokens[:, 0] = target[:, 0].argmax(1)
        kw = dict(seed=list(range(batch)), offset=5, top_k=[0, 8, 0, 3][:batch],
                  temperature=[1.0, 0.0, 0.8, 1.2][:batch], repetition_penalty=1.2,
                  output_token_ids=[[1, 2]] * batch, logprobs=2,
                  parents=torch.tensor([-1, -1, 0, 0, 1][:drafts]).expand(batch, -1)
                  if tree else None)
        want = verify(target, tokens, draft_probs=q, **kw)
        got = _on_device(device, verify, target.to(device), tokens.to(device),
                         draft_probs=q.to(device), **kw)
        if not _same(tuple(got), tuple(want)):
            return f"verify ({'tree' if tree else 'chain'}) differs from the CPU kernels"
    return ""


CHECKS: List[Tuple[str, Callable]] = [
    ("edits + logprobs", check_edits),
    ("rows > blocks", check_rows_beyond_resident_blocks),
    ("row layouts", check_layouts),
    ("V=1, V=256000", check_vocab_extremes),
    ("device params", check_device_parameters),
    ("graph replay", check_graph_replay),
    ("verify", check_verify),
]


def run_checks(device: torch.device, small: bool = False):
    """(check name, '' or the problem) for each check, on `device` against the CPU kernels."""
    out = []
    for name, check in CHECKS:
        g = torch.Generator().manual_seed(len(out))
        try:
            problem = check(device, g, small)
        except Exception as e:  # a crash is a failure to report, not to hide
            problem = f"{type(e).__name__}: {e}"
        out.append((name, problem))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out
