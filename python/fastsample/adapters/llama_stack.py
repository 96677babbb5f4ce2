"""Llama Stack `sampling_params`: strategy greedy / top_p / top_k, as a flat string with sibling
fields (older releases) or as a {"type": ...} object (current releases)."""
from __future__ import annotations

from typing import Any, Mapping

from ..requests import arguments
from ..requests.sampling_params import MIN_TOKENS, SamplingParams
from ._fields import check_known, drop_none, int_field, reject_guided, source_range, strings

TOP_K = arguments.Range("an integer >= 1", 1, arguments.MAX_SEED, integer=True)

SOURCE = "Llama Stack"
PARAM_FIELDS = {"strategy", "temperature", "top_p", "top_k", "repetition_penalty", "max_tokens",
                "stop", "additional_params", "max_parallel_requests", "timeout"}
STRATEGY_FIELDS = {
    "greedy": {"type"},
    "top_p": {"type", "temperature", "top_p"},
    "top_k": {"type", "top_k"},
}


def from_llama_stack(sampling_params: Mapping[str, Any], *, lenient: bool = False) -> SamplingParams:
    """SamplingParams from Llama Stack sampling_params.

    Object form: {"strategy": {"type": "top_p", "temperature": 0.7, "top_p": 0.9},
    "max_tokens": 256, "repetition_penalty": 1.0}. Flat form: {"strategy": "top_p",
    "temperature": 0.7, "top_p": 0.9, "top_k": 0, ...}. greedy -> temperature 0; top_k -> that
    many tokens at temperature 1 (unless a temperature is given); max_tokens 0 means no limit
    (Llama Stack's default).
    """
    reject_guided(SOURCE, sampling_params)
    check_known(SOURCE, sampling_params, PARAM_FIELDS, lenient)
    sp = dict(sampling_params)
    strategy = sp.get("strategy", {"type": "greedy"})
    if isinstance(strategy, str):
        strategy = {"type": strategy, **{k: sp[k] for k in ("temperature", "top_p", "top_k") if k in sp}}
    kind = strategy.get("type") if isinstance(strategy, Mapping) else strategy
    if not isinstance(kind, str) or kind not in STRATEGY_FIELDS:
        raise ValueError(f"{SOURCE}: strategy {kind!r} is not one of {sorted(STRATEGY_FIELDS)}")
    kind = strategy["type"]
    if not isinstance(sampling_params.get("strategy"), str):
        check_known(f"{SOURCE} strategy {kind}", strategy, STRATEGY_FIELDS[kind], lenient)
    values: dict = {}
    if kind == "greedy":
        values["temperature"] = 0.0
    elif kind == "top_p":
        values["temperature"] = source_range(SOURCE, "temperature", strategy.get("temperature", 1.0), 0.0, 3.4e38)
        values["top_p"] = source_range(SOURCE, "top_p", strategy.get("top_p", 0.95), 0.0, 1.0, low_open=True)
    else:
        values["temperature"] = source_range(SOURCE, "temperature", strategy.get("temperature", 1.0), 0.0, 3.4e38)
        if strategy.get("top_k") is None:
            raise ValueError(f"{SOURCE}: the top_k strategy needs top_k (an integer >= 1)")
        values["top_k"] = int_field(SOURCE, "top_k", strategy["top_k"], TOP_K)
    max_tokens = int_field(SOURCE, "max_tokens", sp.get("max_tokens"), MIN_TOKENS)
    stop = strings(SOURCE, "stop", sp.get("stop"))
    metadata = {k: sp[k] for k in ("additional_params", "max_parallel_requests", "timeout") if k in sp}
    return SamplingParams(**drop_none(dict(
        values,
        repetition_penalty=sp.get("repetition_penalty"),
        max_tokens=max_tokens if max_tokens else None,
        stop=stop,
        metadata=metadata,
    )))
