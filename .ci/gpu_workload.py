"""A CUDA workload for compute-sanitizer (memcheck, racecheck): the selftest's CUDA checks
(fastsample/reference/selftest_cuda.py: every kernel and path against the CPU kernels, bit for bit), small
enough with --small to run under the sanitizer in a minute. Run by .ci/gpu-check; exits non-zero
when a check fails."""
import sys

import torch

from fastsample.reference import selftest_cuda


def main(small: bool) -> int:
    results = selftest_cuda.run_checks(torch.device("cuda"), small=small)
    for name, problem in results:
        print(f"{name:<20} {'MISMATCH: ' + problem if problem else 'ok'}")
    failures = sum(bool(p) for _, p in results)
    print(f"gpu_workload: {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main("--small" in sys.argv))
