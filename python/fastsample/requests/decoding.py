"""A request's decoding strategy: how many sequences it returns (n, best_of) and whether they
come from beam search (num_beams, length_penalty, early_stopping) or contrastive search
(penalty_alpha, with top_k candidates). A strategy spans a whole
generation, so only the loops that own one run it (fastsample.generate and the transformers
`custom_generate` loops); a per-step path (Sampler, SamplingBatch, FastLogitsProcessor)
refuses a request that sets one rather than return one sequence of it."""
from __future__ import annotations

from typing import Any, Optional

from ..kernel.param_table import Range

MAX_SEQUENCES = 1 << 16  # n, best_of and num_beams: each sequence is a row of the batch
SEQUENCES = Range(f"an integer in [1, {MAX_SEQUENCES}]", 1, MAX_SEQUENCES, integer=True)
LENGTH_PENALTY = Range("a finite number", -3.4e38, 3.4e38)
PENALTY_ALPHA = Range("a number in [0, 1] (0 = off)", 0.0, 1.0)
MAX_CANDIDATES = 64  # contrastive search's top_k: the fused scoring kernel's k (contrastive.h)
SEED_SPAN = 1 << 63  # sequence j of a seeded request takes seed (seed + j) mod 2^63

# The fields, as SamplingParams names them.
FIELDS = ("n", "best_of", "num_beams", "length_penalty", "early_stopping", "penalty_alpha")


def is_early_stopping(v: Any) -> bool:
    """Whether v is an early_stopping value: True, False or "never" (type-checked first, so an
    array or tensor is a plain no)."""
    return isinstance(v, bool) or (isinstance(v, str) and v == "never")


def ranks_samples(p: Any) -> bool:
    """Whether a request draws more sequences than it returns (best_of > n)."""
    return p.best_of is not None and p.best_of > p.n


def sets_strategy(p: Any) -> bool:
    """Whether a request asks for more than one sequence, beam search or contrastive search
    (best_of = n draws what n alone does)."""
    return p.n > 1 or ranks_samples(p) or p.num_beams > 1 or p.penalty_alpha > 0


def _search_refusal(p: Any, what: str) -> Optional[str]:
    """Why a deterministic search (beam or contrastive) cannot run the request's other fields:
    it chooses among candidates instead of drawing, so it returns no per-token logprobs, and
    it settles sequences itself (no stop strings, grammar or mirostat)."""
    others = [name for name, on in (
        ("mirostat", p.mirostat != 0), ("structured_output", p.structured_output is not None),
        ("logprobs", p.logprobs is not None), ("prompt_logprobs", p.prompt_logprobs is not None),
        ("stop", bool(p.stop))) if on]
    if others:
        return (f"{what} does not run {', '.join(others)}; unset them or decode without it")
    return None


def refusal(p: Any) -> Optional[str]:
    """Why a request's strategy fields cannot run together (None: they can)."""
    if not is_early_stopping(p.early_stopping):
        return (f"early_stopping={p.early_stopping!r} is not allowed; use True, False or "
                f"'never' (transformers' beam search rules)")
    if p.best_of is not None and p.best_of < p.n:
        return f"best_of={p.best_of} is out of range; allowed: n ({p.n}) <= best_of"
    if p.penalty_alpha > 0:
        return _contrastive_refusal(p)
    if p.num_beams == 1:
        unused = [f"{name}={getattr(p, name)!r}" for name, off in (
            ("length_penalty", 1.0), ("early_stopping", False)) if getattr(p, name) != off]
        if unused:
            return (f"{', '.join(unused)} only change beam search: set num_beams > 1, or leave "
                    f"them at their defaults (length_penalty 1.0, early_stopping False)")
        return None
    if ranks_samples(p):
        return (f"best_of={p.best_of} with num_beams={p.num_beams}: beam search returns its n "
                f"best beams; leave best_of unset")
    if p.n > p.num_beams:
        return f"n={p.n} is out of range with num_beams={p.num_beams}; allowed: n <= num_beams"
    return _search_refusal(p, f"num_beams={p.num_beams}: beam search")


def _contrastive_refusal(p: Any) -> Optional[str]:
    what = f"penalty_alpha={p.penalty_alpha!r}: contrastive search"
    if p.temperature != 0.0:
        return (f"{what} chooses deterministically; it needs temperature 0 (transformers runs "
                f"it only with do_sample false)")
    if not 2 <= p.top_k <= MAX_CANDIDATES:
        return (f"{what} ranks top_k candidates; it needs top_k in [2, {MAX_CANDIDATES}] (got "
                f"{p.top_k}; transformers' default is 50)")
    crossed = [f"{name}={getattr(p, name)!r}" for name, on in (
        ("num_beams", p.num_beams > 1), ("n", p.n > 1), ("best_of", ranks_samples(p)),
        ("length_penalty", p.length_penalty != 1.0),
        ("early_stopping", p.early_stopping is not False)) if on]
    if crossed:
        return f"{what} returns one sequence; unset {', '.join(crossed)}"
    return _search_refusal(p, what)


def per_step_refusal(p: Any, where: str) -> Optional[str]:
    """Why `where` (a per-step path) cannot run the request (None: it can)."""
    if not sets_strategy(p):
        return None
    asked = ", ".join(f"{name}={getattr(p, name)!r}" for name, on in (
        ("n", p.n > 1), ("best_of", ranks_samples(p)), ("num_beams", p.num_beams > 1),
        ("penalty_alpha", p.penalty_alpha > 0)) if on)
    return (f"{where} decodes one sequence per request, step by step: {asked} spans the whole "
            f"generation; run it with fastsample.generate (or transformers' generate with "
            f"custom_generate=fastsample.transformers.sample_loop, beam_search_loop or "
            f"contrastive_search_loop), or add one request per sequence")


def sequence_seed(seed: Optional[int], j: int) -> Optional[int]:
    """Sequence j's seed: (seed + j) mod 2^63, as vLLM seeds a request's n samples; None
    stays None (each sequence draws its own)."""
    return None if seed is None else (seed + j) % SEED_SPAN
