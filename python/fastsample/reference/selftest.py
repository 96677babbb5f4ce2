"""`python -m fastsample selftest`: every compiled backend on this machine against the reference
on random batches (all dtypes, small and large V, ties, NaN/inf rows); prints a pass/fail table.
This is how a GPU user checks an install: the test suite's CUDA half needs a GPU to run."""
from __future__ import annotations

import math
import sys
from typing import Callable, Dict, List, Tuple

import torch

from ..kernel import cuda
from ..kernel.build_info import build_info
from . import contract as reference, selftest_cuda
from ..functional.sampling import process_logits, sample
from .verify import keep_set_mismatch

PARAMS: Dict[str, dict] = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p only": dict(temperature=0.8, top_p=0.9),
    "top-k 2000": dict(temperature=1.2, top_k=2000),
    "min-p": dict(temperature=1.5, min_p=0.1),
    "top-n-sigma": dict(temperature=1.0, top_n_sigma=1.0),
    # probability 1: the coin always acts, so unseeded process_logits and sample keep one set.
    "xtc": dict(temperature=1.0, top_k=100, xtc_threshold=0.05, xtc_probability=1.0),
    "typical-p": dict(temperature=1.0, typical_p=0.9),
    "epsilon+eta": dict(temperature=1.0, top_k=100, epsilon_cutoff=3e-4, eta_cutoff=1e-3),
    "greedy": dict(temperature=0.0),
}
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
VOCABS = (7, 1000, 128256)
BATCH = 6
# Tokens drawn with the same seed agree with the reference's float64 draw except where the draw
# falls within rounding of a cumulative-mass step: allow one row in BATCH to differ.
MIN_TOKEN_AGREEMENT = (BATCH - 1) / BATCH


def _inputs(kind: str, vocab: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":
        x = torch.randint(-8, 9, (BATCH, vocab), generator=g).float().div(2)
    else:
        x = torch.randn(BATCH, vocab, generator=g) * 3.0
    if kind == "nan/inf" and vocab > 4:
        x[0, 1] = math.nan
        x[1, 2] = math.inf
        x[2, : vocab // 2] = -math.inf
        x[3] = math.nan  # no valid token
    return x.to(dtype)


def _check(device: torch.device, x: torch.Tensor, params: dict) -> str:
    """'' when the backend matches the reference on x, else the first problem found."""
    got = process_logits(x.to(device), **params).cpu()
    problem = keep_set_mismatch(x, got, **params)
    if problem:
        return "keep-set: " + problem
    seeds = list(range(BATCH))
    out = sample(x.to(device), seed=seeds, return_valid=True, **params)
    want = reference.sample(x, seed=seeds, return_valid=True, **params)
    tokens, valid = out.tokens.cpu(), out.valid.cpu()
    if not torch.equal(valid, want.valid):
        return f"valid flags {valid.tolist()} != reference {want.valid.tolist()}"
    keep = got > -math.inf
    for row in valid.nonzero().flatten().tolist():
        if not bool(keep[row, tokens[row]]):
            return f"row {row}: token {int(tokens[row])} is outside the keep-set"
    if bool((tokens[~valid] != -1).any()):
        return "a row without a valid token did not return -1"
    if float((tokens == want.tokens).double().mean()) < MIN_TOKEN_AGREEMENT:
        return f"tokens {tokens.tolist()} vs reference {want.tokens.tolist()}"
    return ""


def _backends() -> List[Tuple[str, torch.device, str]]:
    """(name, device, reason to skip or '')"""
    out = [("cpu", torch.device("cpu"), "")]
    if not cuda.COMPILED:
        why = build_info()["cuda_not_built"] or "this build compiled no CUDA kernels"
        out.append(("cuda", torch.device("cpu"), f"not compiled: {why}"))
    elif not torch.cuda.is_available():
        out.append(("cuda", torch.device("cpu"), "no GPU visible to torch"))
    elif (reason := cuda.unusable_reason()) is not None:
        out.append(("cuda", torch.device("cuda"), "FAIL: " + reason))
    else:
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", torch.device("cuda", i), ""))
    return out


def _cuda_checks(name: str, device: torch.device, print_fn: Callable[[str], None]) -> int:
    """The CUDA kernels against the CPU kernels, bit for bit (selftest_cuda.py)."""
    failures = 0
    for check, problem in selftest_cuda.run_checks(device):
        failures += bool(problem)
        status = "FAIL: " + problem if problem else "pass (= CPU kernels)"
        print_fn(f"{name:<8} {'-':<5} {'-':>6} {check:<20} {status}")
    return failures


def run(print_fn: Callable[[str], None] = print) -> int:
    """Runs the self-test; returns the process exit code (0 all passed, 1 any failure)."""
    failures = 0
    st = cuda.runtime_status()
    if cuda.COMPILED:
        print_fn(f"CUDA driver {st.driver or 'none'}, runtime {st.runtime} (built in), "
                 f"{st.devices} GPU(s) seen by the runtime, torch sees "
                 f"{torch.cuda.device_count()}")
    print_fn(f"{'backend':<8} {'dtype':<5} {'V':>6} {'input':<8} {'params':<11} result")
    for name, device, skip in _backends():
        if skip.startswith("FAIL"):
            failures += 1
            print_fn(f"{name:<8} {'-':<5} {'-':>6} {'-':<8} {'-':<11} {skip}")
            continue
        if skip:
            print_fn(f"{name:<8} {'-':<5} {'-':>6} {'-':<8} {'-':<11} SKIPPED: {skip}")
            continue
        case = 0
        total = len(DTYPES) * len(VOCABS) * 3 * len(PARAMS)
        done = 0
        for dname, dtype in DTYPES.items():
            for vocab in VOCABS:
                for kind in ("random", "ties", "nan/inf"):
                    x = _inputs(kind, vocab, dtype, seed=case)
                    case += 1
                    for pname, params in PARAMS.items():
                        try:
                            problem = _check(device, x, params)
                        except Exception as e:  # a crash is a failure to report, not to hide
                            problem = f"{type(e).__name__}: {e}"
                        failures += bool(problem)
                        done += 1
                        status = "FAIL: " + problem if problem else "pass"
                        print_fn(f"{name:<8} {dname:<5} {vocab:>6} {kind:<8} {pname:<11} "
                                 f"{status:<6} [{done}/{total}]")
        if device.type == "cuda":
            failures += _cuda_checks(name, device, print_fn)
    print_fn("selftest: " + ("all passed" if failures == 0 else f"{failures} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run())
