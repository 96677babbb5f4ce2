"""Validation of sample()/process_logits() arguments and their conversion to kernel arguments.

Every rejection names the field, the value and the allowed range (ValueError), or the field and
the accepted types (TypeError).
"""
from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from ..kernel.cuda import capturing, device_values_trusted, host_to_device
# The ranges of the per-row parameters live in their table (re-exported for their users).
from ..kernel.param_table import (MAX_INT64, MIN_P, OFFSET, SEED, TEMPERATURE, TOP_K,  # noqa: F401
                                  TOP_P, Range)

FLOAT_DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
MAX_VOCAB = 1 << 25
MAX_SEED = MAX_INT64

PerRow = Union[int, float, Sequence[Any], torch.Tensor, np.ndarray]


def as_logits(logits: Any, name: str = "logits") -> torch.Tensor:
    """Returns logits as a [B, V] torch tensor whose last dimension is contiguous."""
    if isinstance(logits, np.ndarray):
        if logits.dtype not in (np.float32, np.float16):
            raise TypeError(
                f"{name}: numpy dtype {logits.dtype} is not supported; use float32 or float16"
            )
        logits = torch.from_numpy(logits)
    elif not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray of shape [B, V], "
            f"got {type(logits).__name__}"
        )
    if logits.device.type == "meta":
        raise ValueError(f"{name}: a meta tensor holds no values; sample real logits "
                         "(on the CPU or a GPU)")
    if logits.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name}: dtype {logits.dtype} is not supported; use float32, float16 or bfloat16"
        )
    if logits.dim() != 2:
        raise ValueError(
            f"{name} must have shape [B, V], got shape {tuple(logits.shape)}"
            + (" (use logits.unsqueeze(0) for one row)" if logits.dim() == 1 else "")
            + (" (a model's [B, T, V] output: sample its last position, logits[:, -1, :])"
               if logits.dim() == 3 else "")
        )
    vocab = logits.shape[1]
    if vocab < 1 or vocab > MAX_VOCAB:
        raise ValueError(f"{name}: vocabulary size V={vocab} is out of range; allowed 1 <= V <= {MAX_VOCAB}")
    if logits.requires_grad:
        logits = logits.detach()
    if logits.stride(1) != 1 and logits.shape[0] > 0:
        logits = logits.contiguous()
    return logits


def is_int(v: Any) -> bool:
    # type() first: the ABC check is slow, and a logit_bias dict is checked entry by entry.
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def is_real(v: Any) -> bool:
    return type(v) in (float, int) or (isinstance(v, numbers.Real) and not isinstance(v, bool))


def check_scalar(name: str, v: Any, rng: Range) -> None:
    if rng.integer:
        if not is_int(v):
            raise TypeError(f"{name} must be an int ({rng.text}), got {type(v).__name__} {v!r}")
    elif not is_real(v):
        raise TypeError(f"{name} must be a number ({rng.text}), got {type(v).__name__} {v!r}")
    if not rng.ok(v):
        raise ValueError(rng.message(name, v))


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _rows_tensor(name: str, v: Any, batch: int, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        if v.device.type == "meta":
            raise ValueError(f"{name}: a meta tensor holds no values; pass real values")
        t = v.detach()
    elif isinstance(v, np.ndarray):
        if v.dtype.kind not in "biuf":
            raise TypeError(f"{name}: per-row values must be numbers, got a numpy array of "
                            f"dtype {v.dtype}")
        if v.dtype.kind == "u" and v.dtype.itemsize == 8:
            if v.size and int(v.max()) > INT64_MAX:
                raise ValueError(f"{name}: per-row value {int(v.max())} is out of range")
            v = v.astype(np.int64)
        t = torch.from_numpy(np.ascontiguousarray(v))
    elif isinstance(v, (list, tuple)):
        integer = dtype == torch.int64
        for i, item in enumerate(v):
            if not (is_int(item) if integer else is_real(item)):
                kind = "int" if integer else "number"
                raise TypeError(f"{name}: every per-row value must be a {kind}, got {item!r}")
            if integer and not INT64_MIN <= item <= INT64_MAX:
                raise ValueError(f"{name}[{i}]={item!r} is out of range (beyond int64)")
        t = torch.tensor([int(i) for i in v] if integer else [float(i) for i in v],
                         dtype=torch.int64 if integer else torch.float64)
    else:
        raise TypeError(
            f"{name} must be a scalar or one value per row (list, tuple, numpy array or tensor), "
            f"got {type(v).__name__}"
        )
    if t.dim() == 0:
        # A 0-d tensor (a reduction's result, say) is one value for every row; expanded on its
        # device, as reading it would wait for the GPU.
        t = t.reshape(1).expand(batch)
    if t.dim() != 1 or t.shape[0] != batch:
        raise ValueError(f"{name}: per-row values must have shape [{batch}] (one per row), got {tuple(t.shape)}")
    if dtype == torch.int64 and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
        raise TypeError(f"{name}: per-row values must be integers, got dtype {t.dtype}")
    if dtype != torch.int64 and (t.is_complex() or t.dtype == torch.bool):
        raise TypeError(f"{name}: per-row values must be real numbers, got dtype {t.dtype}")
    return t


def check_capturable(name: str, t: torch.Tensor, device: torch.device) -> None:
    """During CUDA-graph capture a host tensor would be copied once, at capture, and replayed
    with stale values; per-row values must already live on the device."""
    if t.device != device and capturing():
        raise ValueError(
            f"{name}: per-row values are on {t.device} while a CUDA graph is being captured; "
            f"put them on {device} before capture (e.g. a fastsample.SamplingBatch)"
        )


def _check_rows(name: str, t: torch.Tensor, rng: Range) -> None:
    if t.device.type != "cpu" and device_values_trusted():
        # Reading device values would wait for the GPU, which capture forbids. The kernels
        # normalize out-of-range values (row_params.h); SamplingBatch validated them at build.
        return
    # Integers compare as int64 (float64 would round 2**63-1 up past the range).
    values = t.to("cpu", torch.int64 if rng.integer else torch.float64)
    bad = ~torch.isfinite(values) if not rng.integer else torch.zeros_like(values, dtype=torch.bool)
    finite = values.clone()
    finite[bad] = 0
    low = int(rng.low) if rng.integer else rng.low
    high = int(rng.high) if rng.integer else rng.high
    lo_ok = finite > low if rng.low_open else finite >= low
    in_range = lo_ok & (finite <= high)
    if not rng.integer and rng.dtype == torch.float32:
        in_range &= (finite == 0) | (finite.abs() > 2.0**-150)
    for e in rng.extra:
        in_range |= values == e
    bad |= ~in_range
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(rng.message(f"{name}[{row}]", t[row].item()))


@dataclass
class Param:
    """A parameter as the kernels take it: a scalar, or a per-row tensor (then `rows` is set)."""

    scalar: Union[int, float]
    rows: Optional[torch.Tensor] = None

    def ptr(self) -> int:
        return 0 if self.rows is None else self.rows.data_ptr()


def param(name: str, v: Any, batch: int, rng: Range, device: torch.device) -> Param:
    """Validates one filter parameter; per-row values become a contiguous tensor on `device`."""
    if isinstance(v, (numbers.Number, str)):
        check_scalar(name, v, rng)
        return Param(int(v) if rng.integer else float(v))
    dtype = torch.int64 if rng.integer else rng.dtype
    t = _rows_tensor(name, v, batch, dtype)
    check_capturable(name, t, device)
    _check_rows(name, t, rng)
    t = host_to_device(t.to(dtype=dtype).contiguous(), device)
    return Param(0 if rng.integer else 1.0, t)


@dataclass
class Seeds:
    """Per-call randomness as the kernels take it: a scalar or one int64 per row each."""

    seed: Param
    offset: Param


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """" (did you mean 'a', 'b'?)" naming the known names nearest to `name`, or "" if none is."""
    near = difflib.get_close_matches(str(name), sorted(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""


def draw_seeds(out: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Fills the int64 tensor `out` with seeds in [0, 2**63-1] from `generator`: one per row."""
    # Without a generator, the plain call: its keyword costs a tenth of a B = 1 call's overhead.
    return out.random_() if generator is None else out.random_(generator=generator)


def seed_value(name: str, v: Any) -> Optional[int]:
    """None for a random row, else the seed; -1 also means random."""
    if v is None:
        return None
    if not is_int(v):
        raise TypeError(f"{name} must be an int, None or -1 (random), got {type(v).__name__} {v!r}")
    v = int(v)
    if v == -1:
        return None
    if not 0 <= v <= MAX_SEED:
        raise ValueError(f"{name}={v} is out of range; allowed: 0 <= seed <= 2**63-1, or -1/None for random")
    return v


def _offset_value(name: str, v: Any) -> int:
    if not is_int(v):
        raise TypeError(f"{name} must be an int >= 0, got {type(v).__name__} {v!r}")
    v = int(v)
    if not 0 <= v <= MAX_SEED:
        raise ValueError(f"{name}={v} is out of range; allowed: 0 <= offset <= 2**63-1")
    return v


def check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")


def _draw_on(device: torch.device, batch: int, generator: Optional[torch.Generator]) -> torch.Tensor:
    """B seeds drawn where the generator lives (the device's default generator when None, so a
    CUDA draw is captured into a graph correctly), returned on `device`."""
    where = generator.device if generator is not None else device
    return draw_seeds(torch.empty(batch, dtype=torch.int64, device=where), generator).to(device)


def seeds(seed: Any, offset: Any, generator: Optional[torch.Generator], batch: int,
          device: torch.device) -> Seeds:
    """Resolves seed/offset: seeded rows use (seed, offset or 0); each unseeded row draws its own
    seed from `generator` (or the default generator of the logits' device), all rows in one draw
    of B values, and uses the given offset (or 0). Per-row seed/offset tensors stay on their
    device (no host round trip when they are already on the logits' device)."""
    check_generator(generator)
    if isinstance(seed, torch.Tensor) or isinstance(offset, torch.Tensor):
        return _tensor_seeds(seed, offset, generator, batch, device)
    scalar_seed = seed is None or is_int(seed)
    scalar_offset = offset is None or is_int(offset)
    if scalar_seed and scalar_offset:
        s = seed_value("seed", seed)
        o = Param(0 if offset is None else _offset_value("offset", offset))
        if s is None:
            return Seeds(Param(0, _draw_on(device, batch, generator)), o)
        return Seeds(Param(s), o)

    seed_list = _per_row_ints("seed", seed, batch)
    offset_list = _per_row_ints("offset", offset, batch)
    resolved_seed = [seed_value(f"seed[{r}]", v) for r, v in enumerate(seed_list)]
    resolved_offset = [_offset_value(f"offset[{r}]", v) for r, v in enumerate(offset_list)]
    drawn = None
    if any(s is None for s in resolved_seed):
        drawn = _draw_on(torch.device("cpu"), batch, generator).tolist()
    seed_rows = [drawn[r] if s is None else s for r, s in enumerate(resolved_seed)]
    as_tensor = lambda vals: torch.tensor(vals, dtype=torch.int64, device=device)  # noqa: E731
    return Seeds(Param(0, as_tensor(seed_rows)), Param(0, as_tensor(resolved_offset)))


def check_seeds(seed: Any, offset: Any, generator: Any, batch: int) -> None:
    """Validates seed, offset and generator of a call that draws nothing with them
    (process_logits without XTC), as `seeds` would, leaving every generator's state untouched."""
    check_generator(generator)
    tensors = [t for t in (seed, offset) if isinstance(t, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    if device.type == "cuda" and device_values_trusted():
        return  # device values are trusted during capture, as `seeds` trusts them
    seeds(seed, offset, torch.Generator(device=device), batch, device)


def _int_rows(name: str, v: Any, batch: int, rng: Range, device: torch.device) -> torch.Tensor:
    t = _rows_tensor(name, v, batch, torch.int64)
    check_capturable(name, t, device)
    _check_rows(name, t, rng)
    return host_to_device(t.to(dtype=torch.int64).contiguous(), device)


def _tensor_seeds(seed: Any, offset: Any, generator: Optional[torch.Generator], batch: int,
                  device: torch.device) -> Seeds:
    """seed and/or offset given as tensors: resolved on the device (-1 = random row)."""
    if seed is None or is_int(seed):
        s = seed_value("seed", seed)
        seed_rows = torch.full((batch,), -1 if s is None else s, dtype=torch.int64, device=device)
    else:
        seed_rows = _int_rows("seed", seed, batch, SEED, device)
    if offset is None or is_int(offset):
        offsets = Param(0 if offset is None else _offset_value("offset", offset))
    else:
        offsets = Param(0, _int_rows("offset", offset, batch, OFFSET, device))
    # Outside capture, draw only when some row needs it (as the list form does); a graph always
    # draws, since asking would wait for the GPU.
    if device_values_trusted() or bool((seed_rows == -1).any()):
        seed_rows = torch.where(seed_rows == -1, _draw_on(device, batch, generator), seed_rows)
    return Seeds(Param(0, seed_rows), offsets)


def _per_row_ints(name: str, v: Any, batch: int) -> list:
    if v is None or is_int(v):
        return [v if v is not None else (None if name == "seed" else 0)] * batch
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{name} must be an int, None, or one value per row, got {type(v).__name__}")
    if len(v) != batch:
        raise ValueError(f"{name}: per-row values must have length {batch} (one per row), got {len(v)}")
    if name == "offset" and any(x is None for x in v):
        v = [0 if x is None else x for x in v]
    return list(v)


def canonical_device(device: Any) -> torch.device:
    """`device` as tensors on it report theirs ("cuda" -> "cuda:N" of the current device,
    "cpu:0" -> "cpu"), so that a comparison with a tensor's device means what it says."""
    d = torch.device(device)
    if d.type == "cuda" and d.index is None and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if d.type == "cpu":
        return torch.device("cpu")
    return d


def token_ids(name: str, ids: Any, vocab: Optional[int] = None) -> tuple:
    """ids (a sequence or a 1-D integer tensor) as a tuple of ints in [0, vocab) (vocab None:
    ids in [0, MAX_VOCAB), their exact bound checked where V is known)."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex() or \
                ids.dtype == torch.bool or ids.device.type == "meta":
            raise TypeError(f"{name} must be a 1-D integer tensor or a list of ints, got "
                            f"{ids.dtype} of shape {tuple(ids.shape)}"
                            + (" (a tokenizer's [1, L] input_ids: pass input_ids[0])"
                               if ids.dim() == 2 and ids.shape[0] == 1 else ""))
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise TypeError(f"{name} must be a list of int token ids, got "
                        f"{type(ids).__name__} {ids!r}")
    out = tuple(ids)
    bound = f"V <= {MAX_VOCAB}" if vocab is None else f"V={vocab}"
    for i, t in enumerate(out):
        if not is_int(t):
            raise TypeError(f"{name}[{i}]={t!r}: token ids must be ints")
        if t < 0 or t >= (MAX_VOCAB if vocab is None else vocab):
            raise ValueError(f"{name}[{i}]={t} is out of range; allowed: 0 <= id < {bound}")
    return tuple(int(t) for t in out)
