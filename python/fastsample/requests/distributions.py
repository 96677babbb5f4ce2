"""Distribution-valued parameters, as synthetic-data generators write them: a request's
temperature or top_p drawn per request from Uniform(low, high) or Manual(values, weights)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import arguments


@dataclass(frozen=True)
class Uniform:
    """A value drawn uniformly from [low, high] (low <= high, both finite)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        for name in ("low", "high"):
            v = getattr(self, name)
            if not arguments.is_real(v) or not math.isfinite(v):
                raise ValueError(f"Uniform.{name}={v!r} must be a finite number")
        if self.low > self.high:
            raise ValueError(f"Uniform: low={self.low!r} must be <= high={self.high!r}")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else float(self.low)

    def support(self) -> Tuple[float, float]:
        return float(self.low), float(self.high)

    def to_dict(self) -> dict:
        return {"distribution_type": "uniform", "params": {"low": self.low, "high": self.high}}


@dataclass(frozen=True)
class Manual:
    """One of `values`, with probabilities `weights` (normalized; default equal)."""

    values: Tuple[float, ...]
    weights: Optional[Tuple[float, ...]] = None

    def __init__(self, values: Sequence[float], weights: Optional[Sequence[float]] = None):
        values = tuple(values)
        if not values:
            raise ValueError("Manual.values must hold at least one value")
        for v in values:
            if not arguments.is_real(v) or not math.isfinite(v):
                raise ValueError(f"Manual.values: {v!r} is not a finite number")
        if weights is not None:
            weights = tuple(weights)
            if len(weights) != len(values):
                raise ValueError(f"Manual.weights has {len(weights)} entries for {len(values)} values")
            for w in weights:
                if not arguments.is_real(w) or not math.isfinite(w) or w < 0:
                    raise ValueError(f"Manual.weights: {w!r} is not a finite number >= 0")
            total = math.fsum(weights)
            if total <= 0:
                raise ValueError("Manual.weights must not all be 0")
            weights = tuple(w / total for w in weights)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "weights", weights)

    def draw(self, rng: np.random.Generator) -> float:
        i = int(rng.choice(len(self.values), p=self.weights))
        return float(self.values[i])

    def support(self) -> Tuple[float, float]:
        return float(min(self.values)), float(max(self.values))

    def to_dict(self) -> dict:
        params: dict = {"values": list(self.values)}
        if self.weights is not None:
            params["weights"] = list(self.weights)
        return {"distribution_type": "manual", "params": params}


Distribution = Union[Uniform, Manual]


def parse_distribution(name: str, v: Any) -> Any:
    """Returns a Uniform/Manual for a distribution or its serialized dict; other values as given."""
    if isinstance(v, (Uniform, Manual)):
        return v
    if not isinstance(v, Mapping) or "distribution_type" not in v:
        return v
    kind = v.get("distribution_type")
    params = v.get("params", {})
    if not isinstance(params, Mapping):
        raise TypeError(f"{name}: 'params' of a distribution must be a dict, got {type(params).__name__}")
    try:
        if kind == "uniform":
            return Uniform(params["low"], params["high"])
        if kind == "manual":
            values, weights = params["values"], params.get("weights")
            for what, v in (("values", values), ("weights", weights)):
                if v is not None and not isinstance(v, (list, tuple)):
                    raise TypeError(f"{name}: params.{what} of a manual distribution must be a "
                                    f"list of numbers, got {type(v).__name__}")
            return Manual(values, weights)
    except KeyError as e:
        raise ValueError(f"{name}: the {kind} distribution needs params[{e.args[0]!r}]") from None
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    raise ValueError(f"{name}: distribution_type={kind!r} is not supported; use 'uniform' or 'manual'")
