"""Times a call as `python -m fastsample bench` reports it: repeated rounds, each the mean of
enough back-to-back calls to last `min_round_s`, the median round kept and the rounds' spread
shown, since these machines are shared and one round can be slowed by anything else running."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, List

import torch

# A spread ((slowest - fastest round) / median) above this marks a measurement as noisy.
NOISY_SPREAD = 0.25


@dataclass
class Timing:
    """Seconds per call: the median round, every round, and their spread."""

    median_s: float
    rounds_s: List[float] = field(default_factory=list)

    @property
    def spread(self) -> float:
        return (max(self.rounds_s) - min(self.rounds_s)) / self.median_s if self.median_s else 0.0

    @property
    def noisy(self) -> bool:
        return self.spread > NOISY_SPREAD


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str, rounds: int = 5,
            min_round_s: float = 0.02, max_calls: int = 10_000) -> Timing:
    """Times `fn` on `device` ("cpu" or "cuda": each round ends when the GPU is done)."""
    for _ in range(2):
        fn()  # warm-up: first-call allocations, kernel loading
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    one = max(time.perf_counter() - start, 1e-7)
    calls = max(1, min(max_calls, math.ceil(min_round_s / one)))
    per_call = []
    for _ in range(rounds):
        _sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        per_call.append((time.perf_counter() - start) / calls)
    return Timing(sorted(per_call)[len(per_call) // 2], per_call)
