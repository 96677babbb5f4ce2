"""fastsample.SamplingParams: every per-request field of the sampling contract, validated once.

Core ranges are docs/semantics.md's; adapters (fastsample.adapters) add each ecosystem's own ranges
and defaults before building one of these.
"""
from __future__ import annotations

import functools
import math
import types
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from . import arguments
from ..kernel.param_table import (DRY_ALLOWED_LENGTH, DRY_BASE, DRY_MULTIPLIER,  # noqa: F401
                                  DRY_PENALTY_LAST_N, EPSILON_CUTOFF, ETA_CUTOFF, MIN_TOKENS,
                                  NO_REPEAT_NGRAM_SIZE, PENALTY, REPETITION_PENALTY, TOP_N_SIGMA, TYPICAL_P,
                                  XTC_PROBABILITY, XTC_THRESHOLD)
from .distributions import Distribution, Manual, Uniform, parse_distribution
from . import decoding as _decoding
from . import mirostat as _mirostat

MAX_LOGPROBS = 20
LOGPROBS_MODES = ("raw", "processed")

LOGPROBS = arguments.Range(f"an integer in [0, {MAX_LOGPROBS}], or None (off)", 0, MAX_LOGPROBS, integer=True)
MAX_TOKENS = arguments.Range("an integer >= 1, or None (no limit)", 1, arguments.MAX_SEED, integer=True)
TOKEN_ID = arguments.Range("a token id >= 0", 0, (1 << 31) - 1, integer=True)
LOGIT_BIAS_LIMIT = 100.0
FLOAT32_MAX = 3.4028234663852886e38


def _token_ids(name: str, v: Any) -> Optional[Tuple[int, ...]]:
    if v is None:
        return None
    if hasattr(v, "tolist") and getattr(v, "ndim", 1) == 1:  # a numpy array or a tensor
        v = v.tolist()
    if not isinstance(v, (list, tuple, range)):
        raise TypeError(f"{name} must be a list of token ids, got {type(v).__name__} {v!r}")
    out = tuple(v)
    for i, t in enumerate(out):
        arguments.check_scalar(f"{name}[{i}]", t, TOKEN_ID)
    return tuple(int(t) for t in out)


def _logit_bias(v: Any) -> Optional[Tuple[Tuple[int, float], ...]]:
    """Token -> bias; keys may be ints or decimal strings (JSON). Values clamped to [-100, 100]."""
    if v is None:
        return None
    if isinstance(v, tuple) and all(isinstance(kv, tuple) and len(kv) == 2 for kv in v):
        v = dict(v)  # the stored form, (token, bias) pairs: dataclasses.replace passes it again
    if not isinstance(v, Mapping):
        raise TypeError(f"logit_bias must be a dict token id -> bias, got {type(v).__name__}")
    out = {}
    for key, bias in v.items():
        token = int(key) if isinstance(key, str) and key.strip().lstrip("-").isdigit() else key
        arguments.check_scalar(f"logit_bias key {key!r}", token, TOKEN_ID)
        if not arguments.is_real(bias) or not math.isfinite(bias):
            raise ValueError(f"logit_bias[{key!r}]={bias!r} must be a finite number "
                             f"(clamped to [-{LOGIT_BIAS_LIMIT:g}, {LOGIT_BIAS_LIMIT:g}])")
        out[int(token)] = max(-LOGIT_BIAS_LIMIT, min(LOGIT_BIAS_LIMIT, float(bias)))
    return tuple(sorted(out.items()))


def sequence_bias_items(name: str, v: Any) -> Optional[Tuple[Tuple[Tuple[int, ...], float], ...]]:
    """sequence_bias as transformers takes it: a dict {tuple of token ids: bias} or a list of
    [token ids, bias] pairs (its JSON form); a bias is finite or -inf (a ban). A sequence given
    twice keeps its last bias, in its first place (a dict's rule). None or empty: None."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        pairs = list(v.items())
    elif isinstance(v, (list, tuple)) and all(isinstance(kv, (list, tuple)) and len(kv) == 2
                                              for kv in v):
        pairs = list(v)
    else:
        raise TypeError(f"{name} must be a dict {{(token ids): bias}} or a list of [token ids, "
                        f"bias] pairs, e.g. {{(12, 7): -5.0}} or [[[12, 7], -5.0]]; got "
                        f"{type(v).__name__} {v!r}"[:300])
    out = {}
    for i, (ids, bias) in enumerate(pairs):
        where = f"{name}[{i}]"
        if not isinstance(ids, (list, tuple)) or not ids:
            raise TypeError(f"{where}: a sequence is a non-empty list or tuple of token ids, got "
                            f"{ids!r}")
        ids = _token_ids(where, ids)
        if not arguments.is_real(bias) or math.isnan(bias) or \
                (bias != -math.inf and abs(bias) > FLOAT32_MAX):
            raise ValueError(f"{where}: bias {bias!r} is not allowed; use a number float32 holds "
                             f"(|bias| <= {FLOAT32_MAX:.7g}), or -inf to ban the sequence's last "
                             f"token after the others")
        out[ids] = float(bias)
    return tuple(out.items()) or None


def _frozen_mapping(name: str, v: Any) -> Optional[Mapping[str, Any]]:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(v).__name__}")
    return types.MappingProxyType(dict(v))


# DRY's fields, as SamplingParams and sample() / process_logits() name them.
DRY_FIELDS = ("dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n",
              "dry_sequence_breakers")
MAX_BREAKER_IDS = 1 << 16  # ids in one DRY sequence breaker (the kernels read shorter runs)


def dry_breaker_items(name: str, v: Any) -> Optional[Tuple[Tuple[int, ...], ...]]:
    """DRY's sequence breakers as token-id sequences: a list of lists of ids (llama.cpp's
    breakers are strings, which fastsample cannot tokenize). None or [] = none."""
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
        raise TypeError(f"{name} must be a list of token-id sequences, e.g. [[13], [25, 7]], "
                        f"got {type(v).__name__} {v!r}; tokenize breaker strings first: "
                        f"[tokenizer.encode(s, add_special_tokens=False) for s in strings]")
    out = []
    for i, seq in enumerate(v):
        if hasattr(seq, "tolist") and getattr(seq, "ndim", 1) == 1:
            seq = seq.tolist()
        if isinstance(seq, (str, bytes)) or not isinstance(seq, (list, tuple)):
            raise TypeError(f"{name}[{i}]={seq!r} must be a list of token ids (a breaker is a "
                            f"token sequence: [13], not 13; strings must be tokenized first)")
        if not seq:
            raise ValueError(f"{name}[{i}]=[] is empty; each breaker holds at least one token id")
        if len(seq) > MAX_BREAKER_IDS:
            raise ValueError(f"{name}[{i}] holds {len(seq)} ids; allowed: at most "
                             f"{MAX_BREAKER_IDS}")
        for j, t in enumerate(seq):
            arguments.check_scalar(f"{name}[{i}][{j}]", t, TOKEN_ID)
        out.append(tuple(int(t) for t in seq))
    return tuple(out) or None


def _check_value_or_distribution(name: str, v: Any, rng: arguments.Range) -> Any:
    v = parse_distribution(name, v)
    if isinstance(v, (Uniform, Manual)):
        values = v.values if isinstance(v, Manual) else v.support()
        for x in values:
            if not rng.ok(x):
                raise ValueError(f"{name}: distribution {v!r} reaches {x!r}, outside the allowed "
                                 f"range: {rng.text}")
        return v
    arguments.check_scalar(name, v, rng)
    return float(v)


@dataclass(frozen=True)
class SamplingParams:
    """One request's sampling parameters (immutable; every field validated on construction).

    Attributes (defaults in brackets):
        temperature [1.0]: >= 0, 0 = greedy; or a Uniform/Manual distribution (see resolve()).
        top_k [0]: -1 or 0 = off, else >= 1.
        top_p [1.0]: in (0, 1], 1 = off; or a distribution.
        min_p [0.0]: in [0, 1], 0 = off.
        top_n_sigma [0.0]: >= 0, 0 = off: keep z >= max(z) - n * std(z) (llama.cpp).
        typical_p [1.0 = off]: in (0, 1]; epsilon_cutoff, eta_cutoff [0.0 = off]: in [0, 1];
            transformers' typical, epsilon and eta sampling, after min_p, in that order.
        xtc_threshold [0.1], xtc_probability [0.0 = off]: in [0, 1]; llama.cpp's XTC: with that
            probability per step, when two or more tokens reach the threshold, all but the least
            likely of them are removed (the coin comes from the request's seed).
        repetition_penalty [1.0]: > 0 (HF/CTRL, over prompt and output); presence_penalty [0.0]
            and frequency_penalty [0.0]: finite (OpenAI, over output tokens).
        no_repeat_ngram_size [0 = off]: an int >= 0; transformers' rule over prompt and
            output: a token that would repeat an n-gram of them is masked.
        dry_multiplier [0.0 = off]: >= 0; dry_base [1.75]: >= 1; dry_allowed_length [2]: an
            int >= 0; dry_penalty_last_n [-1 = the whole history; 0 = off]; dry_sequence_breakers
            [None]: token-id sequences. llama.cpp's DRY over prompt and output, after the
            penalties: a token that would extend a repeat of the history's end (of at least
            dry_allowed_length tokens, none of them after the last breaker) by one loses
            multiplier x base^(length - allowed_length); one-token breakers are never
            penalized. Stored as ((ids), ...).
        mirostat [0 = off]: 1 or 2, llama.cpp's mirostat / mirostat_v2, with mirostat_tau
            [5.0] (the target surprise, bits) and mirostat_eta [0.1] (its learning rate), both
            >= 0. Stateful: run by fastsample.Sampler, generate and sample_loop (mu, from
            2 tau, lives in the batch on the device). It replaces the filters (llama.cpp runs
            none beside it: top_k, top_p, min_p, top_n_sigma, typical_p, epsilon_cutoff,
            eta_cutoff and XTC must stay off), needs temperature > 0, and its logprobs are
            processed (docs/decode_loop.md).
        logit_bias [None]: {token id: bias}, each bias clamped to [-100, 100].
        sequence_bias [None]: {tuple of token ids: bias} (or [ids, bias] pairs); transformers'
            rule: the bias (finite, or -inf to ban) is added to a sequence's last token when the
            tokens before it end prompt + output; a one-token sequence always applies. Stored
            as ((ids, bias), ...).
        allowed_token_ids, banned_token_ids [None]: token-id lists. begin_suppress_tokens
            [None]: ids masked at the first generated token only (transformers).
        seed [None]: 0 .. 2**63-1; None (or -1 on input) = random.
        max_tokens [None = no limit]: >= 1. min_tokens [0]: 0 .. max_tokens.
        ignore_eos [False]; stop [()]: stop strings; stop_token_ids [()];
        eos_token_ids [None = the tokenizer's]: what counts as EOS for min_tokens / ignore_eos.
        logprobs [None]: 0 .. 20 alternatives with the sampled token's logprob; prompt_logprobs
            [None]: the same for prompt tokens; logprobs_mode ["raw"]: "raw" | "processed".
        n [1]: sequences returned per prompt (OpenAI n, transformers num_return_sequences):
            independent samples, sequence j seeded seed + j (vLLM's rule), or beam search's n
            best beams. best_of [None = n]: >= n; draw best_of samples and return the n with
            the highest mean logprob per token (OpenAI's legacy completions). num_beams [1 =
            off]: beam search over the processed log-probabilities (transformers' algorithm),
            with length_penalty [1.0] (a finished beam scores sum logprob / length^penalty)
            and early_stopping [False]: True, False or "never" (transformers' rules).
            Integers in [1, 65536]. penalty_alpha [0.0 = off]: in [0, 1]; contrastive search
            (transformers 4.x's): each step the top_k candidates (top_k >= 2, temperature 0)
            are ranked by (1 - alpha) p - alpha x their largest cosine similarity to the
            context's hidden states. Run by fastsample.generate and the transformers loops
            (docs/decode_loop.md); the per-step paths refuse them.
        structured_output [None]: a structured-output request (JSON schema, regex, choice,
            grammar) kept for the grammar stage; not applied by the sampler itself.
        metadata [{}]: fields that are not about sampling (max_parallel_requests, timeout, ...).
    """

    temperature: Union[float, Distribution] = 1.0
    top_k: int = 0
    top_p: Union[float, Distribution] = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Optional[Any] = None
    allowed_token_ids: Optional[Tuple[int, ...]] = None
    banned_token_ids: Optional[Tuple[int, ...]] = None
    seed: Optional[int] = None
    max_tokens: Optional[int] = None
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: Tuple[str, ...] = ()
    stop_token_ids: Tuple[int, ...] = ()
    eos_token_ids: Optional[Tuple[int, ...]] = None
    logprobs: Optional[int] = None
    prompt_logprobs: Optional[int] = None
    logprobs_mode: str = "raw"
    structured_output: Optional[Mapping[str, Any]] = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # Last, so that positional construction keeps its meaning.
    top_n_sigma: float = 0.0
    xtc_threshold: float = 0.1
    xtc_probability: float = 0.0
    typical_p: float = 1.0
    epsilon_cutoff: float = 0.0
    eta_cutoff: float = 0.0
    no_repeat_ngram_size: int = 0
    sequence_bias: Optional[Any] = None
    begin_suppress_tokens: Optional[Tuple[int, ...]] = None
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = -1
    dry_sequence_breakers: Optional[Tuple[Tuple[int, ...], ...]] = None
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    n: int = 1
    best_of: Optional[int] = None
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: Union[bool, str] = False
    penalty_alpha: float = 0.0

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        put("temperature", _check_value_or_distribution("temperature", self.temperature,
                                                        arguments.TEMPERATURE))
        arguments.check_scalar("top_k", self.top_k, arguments.TOP_K)
        put("top_k", int(self.top_k))
        put("top_p", _check_value_or_distribution("top_p", self.top_p, arguments.TOP_P))
        for name, rng in (("min_p", arguments.MIN_P), ("top_n_sigma", TOP_N_SIGMA),
                          ("xtc_threshold", XTC_THRESHOLD), ("xtc_probability", XTC_PROBABILITY),
                          ("typical_p", TYPICAL_P), ("epsilon_cutoff", EPSILON_CUTOFF),
                          ("eta_cutoff", ETA_CUTOFF),
                          ("repetition_penalty", REPETITION_PENALTY),
                          ("presence_penalty", PENALTY), ("frequency_penalty", PENALTY),
                          ("dry_multiplier", DRY_MULTIPLIER), ("dry_base", DRY_BASE),
                          ("mirostat_tau", _mirostat.MIROSTAT_TAU),
                          ("mirostat_eta", _mirostat.MIROSTAT_ETA)):
            arguments.check_scalar(name, getattr(self, name), rng)
            put(name, float(getattr(self, name)))
        put("logit_bias", _logit_bias(self.logit_bias))
        put("sequence_bias", sequence_bias_items("sequence_bias", self.sequence_bias))
        put("allowed_token_ids", _token_ids("allowed_token_ids", self.allowed_token_ids))
        if self.allowed_token_ids == ():
            raise ValueError("allowed_token_ids=[] would mask every token; pass None for no "
                             "restriction")
        put("banned_token_ids", _token_ids("banned_token_ids", self.banned_token_ids))
        put("begin_suppress_tokens", _token_ids("begin_suppress_tokens",
                                                self.begin_suppress_tokens))
        put("stop_token_ids", _token_ids("stop_token_ids", self.stop_token_ids) or ())
        put("eos_token_ids", _token_ids("eos_token_ids", self.eos_token_ids))
        seed = arguments.seed_value("seed", self.seed)
        put("seed", seed)
        if self.max_tokens is not None:
            arguments.check_scalar("max_tokens", self.max_tokens, MAX_TOKENS)
            put("max_tokens", int(self.max_tokens))
        put("dry_sequence_breakers", dry_breaker_items("dry_sequence_breakers",
                                                       self.dry_sequence_breakers))
        for name, rng in (("min_tokens", MIN_TOKENS),
                          ("no_repeat_ngram_size", NO_REPEAT_NGRAM_SIZE),
                          ("dry_allowed_length", DRY_ALLOWED_LENGTH),
                          ("dry_penalty_last_n", DRY_PENALTY_LAST_N),
                          ("mirostat", _mirostat.MIROSTAT)):
            arguments.check_scalar(name, getattr(self, name), rng)
            put(name, int(getattr(self, name)))
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens={self.min_tokens} is out of range; allowed: "
                             f"0 <= min_tokens <= max_tokens ({self.max_tokens})")
        if not isinstance(self.ignore_eos, bool):
            raise TypeError(f"ignore_eos must be a bool, got {type(self.ignore_eos).__name__}")
        if self.stop is not None and not isinstance(self.stop, (str, list, tuple)):
            raise TypeError(f"stop must be a string or a list of strings, got "
                            f"{type(self.stop).__name__} {self.stop!r}")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        for i, s in enumerate(stop):
            if not isinstance(s, str):
                raise TypeError(f"stop[{i}]={s!r} must be a string")
            if not s:
                raise ValueError(f"stop[{i}]='' is not allowed: stop strings must be non-empty")
        put("stop", stop)
        for name in ("logprobs", "prompt_logprobs"):
            if getattr(self, name) is not None:
                arguments.check_scalar(name, getattr(self, name), LOGPROBS)
                put(name, int(getattr(self, name)))
        if self.logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(f"logprobs_mode={self.logprobs_mode!r} is not allowed; use one of {LOGPROBS_MODES}")
        for name in ("n", "num_beams") + (("best_of",) if self.best_of is not None else ()):
            arguments.check_scalar(name, getattr(self, name), _decoding.SEQUENCES)
            put(name, int(getattr(self, name)))
        for name, rng in (("length_penalty", _decoding.LENGTH_PENALTY),
                          ("penalty_alpha", _decoding.PENALTY_ALPHA)):
            arguments.check_scalar(name, getattr(self, name), rng)
            put(name, float(getattr(self, name)))
        put("structured_output", _frozen_mapping("structured_output", self.structured_output))
        for why in (_mirostat.refusal(self), _decoding.refusal(self)):
            if why:
                raise ValueError(why)
        put("metadata", _frozen_mapping("metadata", self.metadata))

    @property
    def is_resolved(self) -> bool:
        """False while temperature or top_p is still a distribution."""
        return not isinstance(self.temperature, (Uniform, Manual)) and not isinstance(
            self.top_p, (Uniform, Manual))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def resolve(self, seed: Optional[int] = None) -> "SamplingParams":
        """Concrete params: each distribution-valued field drawn once (temperature, then top_p)
        from numpy's PCG64 seeded with `seed` (default: this request's seed; None = fresh
        entropy). Already concrete params are returned as they are."""
        if self.is_resolved:
            return self
        rng = np.random.default_rng(self.seed if seed is None else seed)
        drawn = {}
        for name in ("temperature", "top_p"):
            v = getattr(self, name)
            if isinstance(v, (Uniform, Manual)):
                drawn[name] = v.draw(rng)
        return replace(self, **drawn)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "metadata":
                if v:
                    parts.append(f"metadata={dict(v)!r}")
                continue
            if f.name == "structured_output":
                if v is not None:
                    parts.append(f"structured_output={dict(v)!r}")
                continue
            if f.name == "logit_bias" and v is not None:
                parts.append(f"logit_bias={dict(v)!r}")
                continue
            if v != f.default:
                parts.append(f"{f.name}={v!r}")
        return f"SamplingParams({', '.join(parts)})"


def _naming_unknown_fields(init: Any) -> Any:
    """The dataclass __init__, with an unknown keyword named beside the nearest fields."""
    known = frozenset(f.name for f in fields(SamplingParams))

    @functools.wraps(init)
    def checked(self: SamplingParams, *args: Any, **kwargs: Any) -> None:
        unknown = [k for k in kwargs if k not in known]
        if unknown:
            raise TypeError("SamplingParams has no field " + ", ".join(
                f"{k!r}{arguments.did_you_mean(k, known)}" for k in unknown)
                + "; docs/parameters.md lists every field, and the adapters (fastsample."
                  "from_openai, from_hf, from_bedrock, from_llama_stack) read other systems' names")
        init(self, *args, **kwargs)

    return checked


SamplingParams.__init__ = _naming_unknown_fields(SamplingParams.__init__)


def check_params(name: str, value: Any) -> None:
    """TypeError unless `value` is a SamplingParams; a dict is told how to become one."""
    if isinstance(value, SamplingParams):
        return
    hint = ""
    if isinstance(value, Mapping):
        hint = ("; build one with fastsample.SamplingParams(**d), or read a request body with "
                "an adapter (fastsample.from_openai(d), from_hf, from_bedrock, from_llama_stack)")
    raise TypeError(f"{name} must be a fastsample.SamplingParams, got {type(value).__name__}{hint}")
