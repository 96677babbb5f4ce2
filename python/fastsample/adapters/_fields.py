"""What every adapter shares: unknown-field detection and range checks in the source's terms."""
from __future__ import annotations

import difflib
import math
from typing import Any, Iterable, Mapping, Optional

from .. import _params
from .._distributions import Manual, Uniform, parse_distribution


def check_known(source: str, body: Mapping[str, Any], known: Iterable[str], lenient: bool) -> None:
    """Raises ValueError for a field `source` does not define, naming the nearest known ones."""
    if not isinstance(body, Mapping):
        raise TypeError(f"{source}: expected a dict of parameters, got {type(body).__name__}")
    known = sorted(set(known))
    unknown = [k for k in body if k not in known]
    if unknown and not lenient:
        hints = []
        for k in unknown:
            near = difflib.get_close_matches(str(k), known, n=3, cutoff=0.6)
            hints.append(f"{k!r}" + (f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""))
        raise ValueError(f"{source}: unknown field(s) {', '.join(hints)}; pass lenient=True to "
                         f"ignore unknown fields")


def source_range(source: str, name: str, v: Any, low: float, high: float,
                 low_open: bool = False) -> Any:
    """Checks a number, or each value a distribution can take, against the source's range."""
    v = parse_distribution(f"{source} {name}", v)
    values = (v.values if isinstance(v, Manual) else v.support()) if isinstance(v, (Uniform, Manual)) else (v,)
    for x in values:
        if not _params._is_real(x):
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


def int_field(source: str, name: str, v: Optional[Any]) -> Optional[int]:
    if v is None:
        return None
    if not _params._is_int(v):
        raise TypeError(f"{source}: {name} must be an integer, got {type(v).__name__} {v!r}")
    return int(v)
