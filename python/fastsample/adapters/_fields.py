"""What every adapter shares: unknown-field detection and range checks in the source's terms."""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Optional

from ..requests import arguments
from ..requests.distributions import Manual, Uniform, parse_distribution


# Guided-decoding fields other systems name (OpenAI response_format, vLLM / NIM guided_*, vLLM
# structured_outputs). An adapter whose source has no guided decoding refuses them even when
# lenient: ignoring one would lose the constraint.
GUIDED_FIELDS = ("response_format", "guided_json", "guided_regex", "guided_choice",
                 "guided_grammar", "structured_outputs")


def reject_guided(source: str, *bodies: Any) -> None:
    """Raises ValueError naming the guided-decoding fields any of `bodies` carries."""
    found = [k for body in bodies if isinstance(body, Mapping) for k in GUIDED_FIELDS
             if k in body]
    if found:
        raise ValueError(f"{source} has no guided decoding, got {', '.join(found)}; send the "
                         f"request OpenAI-style (fastsample.from_openai) to constrain its output")


def check_known(source: str, body: Mapping[str, Any], known: Iterable[str], lenient: bool) -> None:
    """Raises ValueError for a field `source` does not define, naming the nearest known ones."""
    if not isinstance(body, Mapping):
        raise TypeError(f"{source}: expected a dict of parameters, got {type(body).__name__}")
    known = sorted(set(known))
    unknown = [k for k in body if k not in known]
    if unknown and not lenient:
        hints = [f"{k!r}" + arguments.did_you_mean(k, known) for k in unknown]
        raise ValueError(f"{source}: unknown field(s) {', '.join(hints)}; pass lenient=True to "
                         f"ignore unknown fields")


def source_range(source: str, name: str, v: Any, low: float, high: float,
                 low_open: bool = False) -> Any:
    """Checks a number, or each value a distribution can take, against the source's range."""
    v = parse_distribution(f"{source} {name}", v)
    values = (v.values if isinstance(v, Manual) else v.support()) if isinstance(v, (Uniform, Manual)) else (v,)
    for x in values:
        if not arguments.is_real(x):
            raise TypeError(f"{source}: {name} must be a number, got {type(x).__name__} {x!r}")
        ok = (x > low if low_open else x >= low) and x <= high and math.isfinite(x)
        if not ok:
            bracket = "(" if low_open else "["
            raise ValueError(f"{source}: {name}={x!r} is out of range; {source} allows "
                             f"{bracket}{low:g}, {high:g}]")
    return v


def first_present(body: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """The value of the first of `names` present and not None (camelCase / snake_case pairs)."""
    for n in names:
        if body.get(n) is not None:
            return body[n]
    return default


def metadata_of(body: Mapping[str, Any], names: Iterable[str]) -> dict:
    return {n: body[n] for n in names if n in body}


def drop_none(d: Mapping[str, Any]) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def int_field(source: str, name: str, v: Optional[Any], rng: Optional[arguments.Range] = None
              ) -> Optional[int]:
    """An integer field under the caller's name (None stays None), in `rng` when given."""
    if v is None:
        return None
    if not arguments.is_int(v):
        raise TypeError(f"{source}: {name} must be an integer, got {type(v).__name__} {v!r}")
    if rng is not None and not rng.ok(v):
        raise ValueError(f"{source}: {name}={v!r} is out of range; allowed: {rng.text}")
    return int(v)


def bool_field(source: str, name: str, v: Optional[Any]) -> Optional[bool]:
    """A JSON boolean (None stays None): "false" is a string, not False."""
    if v is None or isinstance(v, bool):
        return v
    raise TypeError(f"{source}: {name} must be true or false, got {type(v).__name__} {v!r}")


def strings(source: str, name: str, v: Any, max_items: Optional[int] = None) -> Optional[list]:
    """A string or a list of strings (stop sequences); None stays None."""
    if v is None:
        return None
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise TypeError(f"{source}: {name} must be a string or a list of strings, got "
                        f"{type(v).__name__} {v!r}")
    if max_items is not None and len(items) > max_items:
        raise ValueError(f"{source}: {name} has {len(items)} entries; {source} allows at most "
                         f"{max_items}")
    for i, x in enumerate(items):
        if not x:
            raise ValueError(f"{source}: {name}[{i}]='' is not allowed: stop strings must be "
                             "non-empty")
    return list(items)


def token_ids(source: str, name: str, v: Any) -> Optional[list]:
    """A list of token ids (ints >= 0); None stays None."""
    if v is None:
        return None
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{source}: {name} must be a list of token ids, got "
                        f"{type(v).__name__} {v!r}")
    for i, t in enumerate(v):
        if not arguments.is_int(t):
            raise TypeError(f"{source}: {name}[{i}]={t!r} must be an int token id")
        if t < 0:
            raise ValueError(f"{source}: {name}[{i}]={t} is out of range; token ids are >= 0")
    return [int(t) for t in v]


def mapping(source: str, name: str, v: Any) -> Optional[Mapping[str, Any]]:
    if v is None or isinstance(v, Mapping):
        return v
    raise TypeError(f"{source}: {name} must be a dict, got {type(v).__name__} {v!r}")
