"""The per-row parameters, declared once: name, the kernels' field type, off value, allowed
range, stage and a doc line. The kernels' side is csrc/include/fastsample/param_table.h
(tests/test_param_table.py holds the two to each other); validation (sample, process_logits,
SamplingParams, the adapters), the Sampler's device tensors, the Edits' kernel arguments and the
table in docs/parameters.md (markdown(), checked by the test) read it from here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Tuple, Union

import torch

MAX_INT64 = (1 << 63) - 1


@dataclass(frozen=True)
class Range:
    """An allowed range, with the text errors show."""

    text: str
    low: float
    high: float
    low_open: bool = False
    integer: bool = False
    extra: tuple = ()  # isolated allowed values below `low` (e.g. top_k -1 and 0)
    # How per-row values of a real parameter reach the kernels (integers: int64).
    dtype: torch.dtype = torch.float32

    def ok(self, v: float) -> bool:
        if v in self.extra:
            return True
        if isinstance(v, float) and not math.isfinite(v):
            return False
        above = v > self.low if self.low_open else v >= self.low
        return above and v <= self.high and not self.vanishes(v)

    def vanishes(self, v: float) -> bool:
        """A nonzero value the kernels' float32 would read as 0 (|v| < 2**-150): T 1e-50 would
        turn greedy, a repetition penalty off; such a value is rejected, never rounded."""
        return not self.integer and self.dtype == torch.float32 and v != 0 and abs(v) <= 2.0**-150

    def message(self, name: str, v: Any) -> str:
        why = " (it rounds to 0 in float32)" if self.vanishes(v) else ""
        return f"{name}={v!r} is out of range{why}; allowed: {self.text}"


TEMPERATURE = Range("a finite number >= 0 (0 = greedy)", 0.0, 3.4e38)
TOP_K = Range("an integer: -1 or 0 (off) or 1 .. 2**63-1", 1, MAX_INT64, integer=True, extra=(-1, 0))
# float64: a decimal top_p (0.8) must not become a float32 (0.800000012) needing more mass.
TOP_P = Range("a number in (0, 1] (1 = off)", 0.0, 1.0, low_open=True, dtype=torch.float64)
MIN_P = Range("a number in [0, 1] (0 = off)", 0.0, 1.0)
TOP_N_SIGMA = Range("a finite number >= 0 (0 = off)", 0.0, 3.4e38)
TYPICAL_P = Range("a number in (0, 1] (1 = off)", 0.0, 1.0, low_open=True, dtype=torch.float64)
EPSILON_CUTOFF = Range("a number in [0, 1] (0 = off)", 0.0, 1.0)
ETA_CUTOFF = Range("a number in [0, 1] (0 = off)", 0.0, 1.0)
XTC_THRESHOLD = Range("a number in [0, 1] (above 0.5 no two tokens reach it)", 0.0, 1.0)
XTC_PROBABILITY = Range("a number in [0, 1] (0 = off)", 0.0, 1.0)
SEED = Range("0 <= seed <= 2**63-1, or -1 for random", 0, MAX_INT64, integer=True, extra=(-1,))
OFFSET = Range("0 <= offset <= 2**63-1", 0, MAX_INT64, integer=True)
REPETITION_PENALTY = Range("a finite number > 0 (1 = off)", 0.0, 3.4e38, low_open=True)
PENALTY = Range("a finite number (0 = off)", -3.4e38, 3.4e38)
MIN_TOKENS = Range("an integer >= 0", 0, MAX_INT64, integer=True)
NO_REPEAT_NGRAM_SIZE = Range("an integer >= 0 (0 = off)", 0, MAX_INT64, integer=True)
DRY_MULTIPLIER = Range("a finite number >= 0 (0 = off)", 0.0, 3.4e38)
DRY_BASE = Range("a finite number >= 1", 1.0, 3.4e38)
DRY_ALLOWED_LENGTH = Range("an integer >= 0", 0, MAX_INT64, integer=True)
DRY_PENALTY_LAST_N = Range("an integer: -1 (the whole history), 0 (off) or >= 1", 0, MAX_INT64,
                           integer=True, extra=(-1,))


@dataclass(frozen=True)
class RowParameter:
    """One per-row parameter. group: "filter" (stages 4-6, the kernels' RowParams) or "edit"
    (the scalar inputs of stages 1-3); kernel_type: its C++ type in param_table.h."""

    name: str
    group: str
    kernel_type: str
    off: Union[int, float]
    range: Range
    stage: str
    doc: str

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of its per-row tensors."""
        return torch.int64 if self.range.integer else self.range.dtype


TABLE: Tuple[RowParameter, ...] = (
    RowParameter("temperature", "filter", "float", 1.0, TEMPERATURE, "4",
                 "z = x / T; 0 = greedy (argmax, lowest id on ties)"),
    RowParameter("top_k", "filter", "int64_t", 0, TOP_K, "5",
                 "keep the k largest z (ties at the k-th kept); -1, 0 or >= V = off"),
    RowParameter("top_p", "filter", "double", 1.0, TOP_P, "5",
                 "keep the smallest head of the sorted z holding mass >= p; 1 = off"),
    RowParameter("min_p", "filter", "float", 0.0, MIN_P, "5",
                 "keep the tokens with probability >= min_p x the top one; 0 = off"),
    RowParameter("top_n_sigma", "filter", "float", 0.0, TOP_N_SIGMA, "5",
                 "keep z >= max(z) - n x std(z) over the finite logits (llama.cpp); 0 = off"),
    RowParameter("typical_p", "filter", "double", 1.0, TYPICAL_P, "5",
                 "keep the tokens closest to the expected -log q, fewest first until their mass "
                 "reaches p (transformers' typical_p); 1 = off"),
    RowParameter("epsilon_cutoff", "filter", "float", 0.0, EPSILON_CUTOFF, "5",
                 "keep the tokens with probability >= epsilon (transformers); 0 = off"),
    RowParameter("eta_cutoff", "filter", "float", 0.0, ETA_CUTOFF, "5",
                 "keep the tokens with probability >= min(eta, sqrt(eta) x exp(-entropy)) "
                 "(transformers); 0 = off"),
    RowParameter("xtc_threshold", "filter", "float", 0.1, XTC_THRESHOLD, "5",
                 "XTC: the probability that makes a token a top choice (llama.cpp's default)"),
    RowParameter("xtc_probability", "filter", "float", 0.0, XTC_PROBABILITY, "5",
                 "XTC: the chance per step of removing every top choice but the least likely "
                 "(when two or more); 0 = off"),
    RowParameter("seed", "filter", "int64_t", 0, SEED, "6",
                 "the row's Philox key (-1 / None at the API: drawn from a generator)"),
    RowParameter("offset", "filter", "int64_t", 0, OFFSET, "6",
                 "the row's Philox counter; a decode loop advances it every step"),
    RowParameter("repetition_penalty", "edit", "float", 1.0, REPETITION_PENALTY, "3",
                 "HF/CTRL rule over the prompt and output ids; 1 = off"),
    RowParameter("frequency_penalty", "edit", "float", 0.0, PENALTY, "3",
                 "x -= frequency x count over the output ids; 0 = off"),
    RowParameter("presence_penalty", "edit", "float", 0.0, PENALTY, "3",
                 "x -= presence for each output id; 0 = off"),
    RowParameter("dry_multiplier", "edit", "float", 0.0, DRY_MULTIPLIER, "3",
                 "DRY (llama.cpp), after the penalties: a token that would extend a repeat of "
                 "the history's end loses multiplier x base^(length - allowed_length); 0 = off"),
    RowParameter("dry_base", "edit", "float", 1.75, DRY_BASE, "3",
                 "DRY: the penalty's growth per repeated token (llama.cpp's default)"),
    RowParameter("dry_allowed_length", "edit", "int64_t", 2, DRY_ALLOWED_LENGTH, "3",
                 "DRY: repeats shorter than this go unpenalized"),
    RowParameter("dry_penalty_last_n", "edit", "int64_t", -1, DRY_PENALTY_LAST_N, "3",
                 "DRY: the window, the history's last n ids; -1 = all of it, 0 = DRY off"),
    RowParameter("no_repeat_ngram_size", "edit", "int64_t", 0, NO_REPEAT_NGRAM_SIZE, "1",
                 "mask every token that would repeat an n-gram of prompt + output "
                 "(transformers); 0 = off"),
    RowParameter("min_tokens", "edit", "int64_t", 0, MIN_TOKENS, "1",
                 "EOS and stop ids masked while num_generated < min_tokens; 0 = off"),
    RowParameter("num_generated", "edit", "int64_t", 0, MIN_TOKENS, "1",
                 "tokens the row has generated (default: its output ids)"),
)
BY_NAME: Dict[str, RowParameter] = {p.name: p for p in TABLE}
FILTERS: Tuple[str, ...] = tuple(p.name for p in TABLE if p.group == "filter")
EDITS: Tuple[str, ...] = tuple(p.name for p in TABLE if p.group == "edit")
# Stages 4-5: the filters' keywords without the draw's seed and offset, in the table's order.
STAGE_5: Tuple[str, ...] = tuple(name for name in FILTERS if name not in ("seed", "offset"))


def markdown() -> str:
    """The table as docs/parameters.md shows it."""
    lines = ["| parameter | stage | kernel type | off | range | meaning |",
             "|---|---|---|---|---|---|"]
    for p in TABLE:
        lines.append(f"| {p.name} | {p.stage} | {p.kernel_type} | {p.off!r} | {p.range.text} | "
                     f"{p.doc} |")
    return "\n".join(lines) + "\n"
