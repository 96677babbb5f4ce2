"""Stages 1-3 arguments (hard masks, logit_bias, penalties) of sample()/process_logits():
validated, packed as padded per-row tensors on the logits' device, and handed to the kernels as
one _C.EditArgs (Edits.kernel_args). The reference reads the same packed form."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch

from .. import _C
from ..kernel import cuda, launch
from . import arguments
from .._C import first_id_out_of_range
from ..kernel.param_table import EDITS
from ..kernel.param_table import (DRY_ALLOWED_LENGTH, DRY_BASE, DRY_MULTIPLIER,
                                  DRY_PENALTY_LAST_N, NO_REPEAT_NGRAM_SIZE)
from .sampling_params import (LOGIT_BIAS_LIMIT, MIN_TOKENS, PENALTY, REPETITION_PENALTY,
                              dry_breaker_items, sequence_bias_items)


@dataclass
class IdRows:
    """[B, L] int64 ids, -1 = padding (L may be 0)."""

    ids: torch.Tensor


# The id lists of EditArgs (csrc/bindings/batch_args_binding.h, FS_ID_LISTS).
ID_LISTS = ("prompt", "output", "bias", "sequences", "allowed", "banned", "stop",
            "begin_suppress", "dry_breakers")


@dataclass
class Edits:
    """Every stage 1-3 input of one call, on the logits' device."""

    prompt: IdRows
    output: IdRows
    output_counts: Optional[torch.Tensor]  # int32 [B, L] beside `output`
    repetition_penalty: arguments.Param
    frequency_penalty: arguments.Param
    presence_penalty: arguments.Param
    dry_multiplier: arguments.Param
    dry_base: arguments.Param
    dry_allowed_length: arguments.Param
    dry_penalty_last_n: arguments.Param
    dry_breakers: IdRows       # dry_sequence_breakers: runs of ids separated by -1
    no_repeat_ngram_size: arguments.Param
    bias: IdRows
    bias_values: torch.Tensor  # float32 [B, L] beside `bias`
    sequences: IdRows          # sequence_bias (pack_sequences)
    sequence_values: torch.Tensor  # float32 [B, L] beside `sequences`
    allowed: IdRows
    banned: IdRows
    stop: IdRows               # EOS (unless ignore_eos) and stop ids
    begin_suppress: IdRows     # masked at the row's first token (num_generated == 0)
    min_tokens: arguments.Param
    num_generated: arguments.Param
    bitmask: Optional[torch.Tensor]
    keep: List[torch.Tensor] = field(default_factory=list)

    def kernel_args(self) -> _C.EditArgs:
        """The kernels' arguments, pointing into this object's tensors (keep it alive)."""
        e = _C.EditArgs(enabled=True)
        for name in ID_LISTS:
            launch.set_ids(e, name, getattr(self, name).ids)
        if self.output_counts is not None:
            e.output_counts = self.output_counts.data_ptr()
        if self.bias.ids.shape[1]:
            e.bias_values = self.bias_values.data_ptr()
        if self.sequences.ids.shape[1]:
            e.sequence_values = self.sequence_values.data_ptr()
        if self.bitmask is not None:
            e.bitmask = self.bitmask.data_ptr()
            e.bitmask_stride = self.bitmask.stride(0)
        for name in EDITS:  # the per-row parameters among the fields
            launch.set_parameter(e, name, getattr(self, name))
        return e


def _check_ids(name: str, t: torch.Tensor, vocab: int) -> None:
    """t: contiguous int64 [B, L]."""
    if t.numel() == 0 or (t.device.type != "cpu" and cuda.device_values_trusted()):
        return
    if t.device.type == "cpu":
        # One plain pass in C++: torch's comparison ops would leave its thread pool spinning on
        # the cores the sampling kernel is about to use.
        first = first_id_out_of_range(t.data_ptr(), t.shape[0], t.shape[1], t.stride(0), vocab)
        if first < 0:
            return
        row, col = divmod(first, t.shape[1])
    else:
        bad = (t < -1) | (t >= vocab)
        if not bool(bad.any()):
            return
        row, col = (int(i) for i in bad.nonzero()[0])
    raise ValueError(f"{name}[{row}][{col}]={int(t[row, col])} is out of range; allowed: "
                     f"token ids 0 <= id < V={vocab} (-1 = padding)")


def _integer_tensor(name: str, v: torch.Tensor, what: str) -> None:
    if v.is_floating_point() or v.is_complex() or v.dtype == torch.bool:
        raise TypeError(f"{name}: {what} must be an integer tensor, got dtype {v.dtype}")
    if v.device.type == "meta":
        raise ValueError(f"{name}: a meta tensor holds no values; pass real {what}")


def id_rows(name: str, v: Any, batch: int, vocab: int, device: torch.device,
            shared_ok: bool, empty_row: Optional[str] = None) -> IdRows:
    """A [B, L] tensor (-1 padding), a list of per-row lists (None: no ids for that row), or
    (shared_ok) one flat list of ids for every row. None = no ids. empty_row: why an empty list
    is rejected (it would mean the opposite of what was asked), or None when it is allowed."""
    if v is None:
        return IdRows(torch.empty((batch, 0), dtype=torch.int64, device=device))
    if isinstance(v, torch.Tensor):
        _integer_tensor(name, v, "token ids")
        if v.dim() == 1 and shared_ok:
            v = v.unsqueeze(0).expand(batch, -1)
        if v.dim() != 2 or v.shape[0] != batch:
            raise ValueError(f"{name}: expected shape [{batch}, L] (one row of ids per row, -1 "
                             f"padding), got {tuple(v.shape)}")
        arguments.check_capturable(name, v, device)
        t = v.to(dtype=torch.int64).contiguous()
        _check_ids(name, t, vocab)  # where the ids are: on the host before they are copied
        return IdRows(cuda.host_to_device(t, device))
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{name} must be a list of token ids, a list of per-row lists, or an "
                        f"int64 tensor [B, L]; got {type(v).__name__}")
    if shared_ok and all(arguments.is_int(i) for i in v):
        if not v and empty_row:
            raise ValueError(f"{name}=[] {empty_row}")
        # One list for every row: packed once, read by every row (row stride 0).
        return IdRows(id_rows(name, [list(v)], 1, vocab, device, False).ids.expand(batch, -1))
    else:
        if len(v) != batch:
            raise ValueError(f"{name}: expected one list of ids per row ({batch}), got {len(v)}")
        rows = []
        for r, row in enumerate(v):
            if row is None:
                rows.append([])
                continue
            if isinstance(row, torch.Tensor):
                _integer_tensor(f"{name}[{r}]", row, "token ids")
                row = row.tolist()
            if not isinstance(row, (list, tuple)) or not all(arguments.is_int(i) for i in row):
                raise TypeError(f"{name}[{r}] must be a list of int token ids (or None), got "
                                f"{row!r}")
            if not row and empty_row:
                raise ValueError(f"{name}[{r}]=[] {empty_row}")
            rows.append(list(row))
    for r, row in enumerate(rows):
        for c, i in enumerate(row):
            if not 0 <= i < vocab:
                raise ValueError(f"{name}[{r}][{c}]={i} is out of range; allowed: token ids "
                                 f"0 <= id < V={vocab}")
    width = max((len(row) for row in rows), default=0)
    t = torch.full((batch, width), -1, dtype=torch.int64)
    for r, row in enumerate(rows):
        t[r, :len(row)] = torch.tensor(row, dtype=torch.int64)
    return IdRows(cuda.host_to_device(t, device))


def _bias_rows(v: Any, batch: int, vocab: int, device: torch.device):
    """logit_bias: one dict {token: bias} for every row, or one dict (or None) per row."""
    if v is None:
        return IdRows(torch.empty((batch, 0), dtype=torch.int64, device=device)), \
            torch.empty((batch, 0), dtype=torch.float32, device=device)
    if isinstance(v, dict):
        # One dict for every row: validated and packed once, read by every row (row stride 0).
        ids, values = _bias_rows([v], 1, vocab, device)
        return IdRows(ids.ids.expand(batch, -1)), values.expand(batch, -1)
    elif isinstance(v, (list, tuple)) and len(v) == batch and all(d is None or isinstance(d, dict) for d in v):
        dicts = [d or {} for d in v]
    else:
        raise TypeError("logit_bias must be a dict {token_id: bias} for every row, or a list of "
                        f"one dict (or None) per row ({batch}); got {type(v).__name__}")
    ids, values = [], []
    for r, d in enumerate(dicts):
        row_ids, row_values = list(d.keys()), list(d.values())
        # Plain int ids in range and finite int/float biases (what an API request holds): no
        # per-entry checks. (A sum of finite values is finite unless it overflows; then, or on
        # NaN or inf, the loop below finds the entry to name.)
        if (all(type(t) is int for t in row_ids) and all(type(b) in (float, int) for b in row_values)
                and (not row_ids or (min(row_ids) >= 0 and max(row_ids) < vocab))
                and math.isfinite(sum(row_values))):
            ids.append(row_ids)
            values.append(row_values)
            continue
        row_ids, row_values = [], []
        for tok, bias in d.items():
            tok = int(tok) if isinstance(tok, str) and tok.lstrip("-").isdigit() else tok
            if not arguments.is_int(tok) or not 0 <= tok < vocab:
                raise ValueError(f"logit_bias[{r}]: token {tok!r} is out of range; allowed: "
                                 f"token ids 0 <= id < V={vocab}")
            if not arguments.is_real(bias) or not math.isfinite(bias):
                raise ValueError(f"logit_bias[{r}][{tok}]={bias!r} is not allowed; use a finite "
                                 f"number (clamped to [-{LOGIT_BIAS_LIMIT:g}, {LOGIT_BIAS_LIMIT:g}])")
            row_ids.append(tok)
            row_values.append(float(bias))
        ids.append(row_ids)
        values.append(row_values)
    width = max((len(r) for r in ids), default=0)
    id_t = torch.full((batch, width), -1, dtype=torch.int64)
    val_t = torch.zeros((batch, width), dtype=torch.float32)
    for r in range(batch):
        id_t[r, :len(ids[r])] = torch.tensor(ids[r], dtype=torch.int64)
        val_t[r, :len(values[r])] = torch.tensor(values[r], dtype=torch.float64).clamp_(
            -LOGIT_BIAS_LIMIT, LOGIT_BIAS_LIMIT)
    return IdRows(cuda.host_to_device(id_t, device)), cuda.host_to_device(val_t, device)


def pack_sequences(items: Any) -> tuple:
    """One row's sequence_bias items ((ids, bias), ...) as the kernels read them
    (sequence_bias.h): the sequences' ids separated by -1, each bias at its last id's place,
    grouped by last token in the order transformers adds a token's biases up (the one-token
    sequence first, then by prefix length in order of first appearance, then in the given
    order). Returns (ids, values) lists."""
    items = list(items or ())
    lengths = list(dict.fromkeys(len(ids) for ids, _ in items if len(ids) > 1))
    ordered = sorted(items, key=lambda kv: 0 if len(kv[0]) == 1 else 1 + lengths.index(len(kv[0])))
    groups: dict = {}
    for ids, bias in ordered:
        groups.setdefault(ids[-1], []).append((ids, bias))
    flat, values = [], []
    for group in groups.values():
        for ids, bias in group:
            if flat:
                flat.append(-1)
                values.append(0.0)
            flat += ids
            values += [0.0] * (len(ids) - 1) + [bias]
    return flat, values


def _sequence_rows(v: Any, batch: int, vocab: int, device: torch.device):
    """sequence_bias: one spec (a dict or [ids, bias] pairs) for every row, or a list of one dict
    (or None) per row."""
    if v is not None and isinstance(v, (list, tuple)) and len(v) == batch and v and \
            all(d is None or isinstance(d, dict) for d in v):
        specs = [sequence_bias_items(f"sequence_bias[{r}]", d) for r, d in enumerate(v)]
    else:
        # One spec for every row: validated and packed once, read by every row (row stride 0).
        items = sequence_bias_items("sequence_bias", v)
        ids, values = _sequence_rows([dict(items or ())], 1, vocab, device)
        return IdRows(ids.ids.expand(batch, -1)), values.expand(batch, -1)
    packed = []
    for r, items in enumerate(specs):
        for ids, _ in items or ():
            bad = [t for t in ids if t >= vocab]
            if bad:
                raise ValueError(f"sequence_bias: row {r}'s sequence {list(ids)} holds {bad[0]}, "
                                 f"out of range; allowed: token ids 0 <= id < V={vocab}")
        packed.append(pack_sequences(items))
    width = max((len(ids) for ids, _ in packed), default=0)
    id_t = torch.full((batch, width), -1, dtype=torch.int64)
    val_t = torch.zeros((batch, width), dtype=torch.float32)
    for r, (ids, values) in enumerate(packed):
        if ids:
            id_t[r, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
            val_t[r, :len(values)] = torch.tensor(values, dtype=torch.float64)
    return IdRows(cuda.host_to_device(id_t, device)), cuda.host_to_device(val_t, device)


def pack_breakers(items: Any) -> list:
    """One row's DRY sequence breakers ((ids), ...) as the kernels read them (dry.h): the
    sequences' ids separated by -1."""
    flat: list = []
    for ids in items or ():
        if flat:
            flat.append(-1)
        flat += ids
    return flat


def _breaker_rows(v: Any, batch: int, vocab: int, device: torch.device) -> IdRows:
    """dry_sequence_breakers: one list of token-id sequences for every row, or a list of one
    (None or a list of sequences) per row."""
    name = "dry_sequence_breakers"
    if v is None:
        return IdRows(torch.empty((batch, 0), dtype=torch.int64, device=device))
    per_row = isinstance(v, (list, tuple)) and len(v) == batch and all(
        r is None or (isinstance(r, (list, tuple)) and all(isinstance(q, (list, tuple)) for q in r))
        for r in v)
    if per_row:
        specs = [dry_breaker_items(f"{name}[{r}]", row) for r, row in enumerate(v)]
    else:
        specs = [dry_breaker_items(name, v)]
    for r, items in enumerate(specs):
        for ids in items or ():
            bad = [t for t in ids if t >= vocab]
            if bad:
                where = f"row {r}'s breaker" if per_row else "breaker"
                raise ValueError(f"{name}: {where} {list(ids)} holds {bad[0]}, out of range; "
                                 f"allowed: token ids 0 <= id < V={vocab}")
    packed = [pack_breakers(items) for items in specs]
    width = max(len(ids) for ids in packed)
    t = torch.full((len(packed), width), -1, dtype=torch.int64)
    for r, ids in enumerate(packed):
        if ids:
            t[r, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    t = cuda.host_to_device(t, device)
    # One list for every row: packed once, read by every row (row stride 0).
    return IdRows(t if per_row else t.expand(batch, -1))


MAX_COUNT = (1 << 31) - 1  # counts reach the kernels as int32


def _counts(v: Any, output: IdRows, device: torch.device) -> Optional[torch.Tensor]:
    if v is None:
        return None
    name = "output_token_counts"
    if isinstance(v, torch.Tensor):
        _integer_tensor(name, v, "counts")
        t = v
    elif isinstance(v, (list, tuple)) and all(isinstance(r, (list, tuple)) for r in v):
        for r, row in enumerate(v):
            for c, n in enumerate(row):
                if not arguments.is_int(n):
                    raise TypeError(f"{name}[{r}][{c}]={n!r}: counts must be ints")
                if not 0 <= n <= MAX_COUNT:
                    raise ValueError(f"{name}[{r}][{c}]={n} is out of range; allowed: "
                                     f"0 <= count <= 2**31-1")
        width = max((len(r) for r in v), default=0)
        t = torch.zeros((len(v), width), dtype=torch.int64)
        for r, row in enumerate(v):
            t[r, :len(row)] = torch.tensor([int(n) for n in row], dtype=torch.int64)
    else:
        raise TypeError(f"{name} must be an integer tensor [B, L] or one list of ints per row "
                        f"(beside output_token_ids), got {type(v).__name__}")
    if t.shape != output.ids.shape:
        raise ValueError(f"{name}: expected the shape of output_token_ids "
                         f"{tuple(output.ids.shape)}, got {tuple(t.shape)}")
    if t.device.type == "cpu" or not cuda.device_values_trusted():
        wide = t.to("cpu", torch.int64)
        bad = (wide < 0) | (wide > MAX_COUNT)
        if bool(bad.any()):
            r, c = (int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name}[{r}][{c}]={int(wide[r, c])} is out of range; allowed: "
                             f"0 <= count <= 2**31-1")
    t = cuda.host_to_device(t.to(dtype=torch.int32).contiguous(), device)
    if t.device.type == "cpu" or not cuda.device_values_trusted():
        ids = output.ids.cpu()
        for r in range(ids.shape[0]):
            row = ids[r][ids[r] >= 0]
            if row.unique().numel() != row.numel():
                raise ValueError(f"output_token_ids[{r}]: with output_token_counts, each token "
                                 "id may appear once per row")
    return t


def bitmask_rows(v: Any, batch: int, vocab: int, device: torch.device) -> Optional[torch.Tensor]:
    if v is None:
        return None
    words = (vocab + 31) // 32
    if not isinstance(v, torch.Tensor) or v.dtype != torch.int32:
        raise TypeError(f"token_bitmask must be an int32 tensor [B, ceil(V/32)] = [{batch}, "
                        f"{words}] (xgrammar/llguidance layout), got {type(v).__name__} "
                        f"{getattr(v, 'dtype', '')}")
    if v.dim() != 2 or v.shape[0] != batch or v.shape[1] < words:
        raise ValueError(f"token_bitmask: expected shape [{batch}, {words}], got {tuple(v.shape)}")
    if v.device.type == "meta":
        raise ValueError("token_bitmask: a meta tensor holds no values")
    arguments.check_capturable("token_bitmask", v, device)
    v = v.to(device)
    return v if v.stride(1) == 1 else v.contiguous()


def _eos_ids(eos_token_id: Any, vocab: int) -> list:
    """eos_token_id: one id or a list of ids (every row's), validated under its own name."""
    if eos_token_id is None:
        return []
    if arguments.is_int(eos_token_id):
        eos = [eos_token_id]
    elif isinstance(eos_token_id, (list, tuple)) and all(arguments.is_int(i) for i in eos_token_id):
        eos = list(eos_token_id)
    else:
        raise TypeError(f"eos_token_id must be an int token id or a list of them, got "
                        f"{type(eos_token_id).__name__} {eos_token_id!r}")
    for i in eos:
        if not 0 <= i < vocab:
            raise ValueError(f"eos_token_id={i} is out of range; allowed: token ids 0 <= id < "
                             f"V={vocab}")
    return [int(i) for i in eos]


def _stop_rows(eos_token_id: Any, stop_token_ids: Any, ignore_eos: bool, batch: int, vocab: int,
               device: torch.device) -> IdRows:
    """EOS (unless ignore_eos) and stop ids, each validated under its own name, as one list."""
    if not isinstance(ignore_eos, bool):
        raise TypeError(f"ignore_eos must be a bool, got {type(ignore_eos).__name__} "
                        f"{ignore_eos!r}")
    eos = _eos_ids(eos_token_id, vocab)
    if ignore_eos:
        eos = []
    stop = id_rows("stop_token_ids", stop_token_ids, batch, vocab, device, True)
    if not eos:
        return stop
    eos_rows = cuda.host_to_device(torch.tensor([eos], dtype=torch.int64), device).expand(
        batch, -1)
    if stop.ids.shape[1] == 0:
        return IdRows(eos_rows)
    return IdRows(torch.cat([eos_rows, stop.ids], dim=1))


# The stage 1-3 keywords of sample() / process_logits(), as build() takes them, and their off
# values (None: not given).
OFF = {"repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
       "no_repeat_ngram_size": 0, "sequence_bias": None,
       "dry_multiplier": 0.0, "dry_base": 1.75, "dry_allowed_length": 2, "dry_penalty_last_n": -1,
       "dry_sequence_breakers": None, "prompt_token_ids": None, "output_token_ids": None, "output_token_counts": None,
       "logit_bias": None, "allowed_token_ids": None, "banned_token_ids": None,
       "token_bitmask": None, "min_tokens": 0, "eos_token_id": None, "stop_token_ids": None,
       "num_generated": None, "ignore_eos": False, "begin_suppress_tokens": None}
NAMES = tuple(OFF)


def all_off(args: dict) -> bool:
    """No stage 1-3 keyword of `args` is given: each is None or its off value."""
    for name, off in OFF.items():
        v = args.get(name, off)
        if off is None or isinstance(off, bool):
            if v is not off:
                return False
        elif not is_default(v, off):
            return False
    return True


def select(given: dict) -> dict:
    """The stage 1-3 keywords out of a call's arguments (its locals())."""
    return {name: given[name] for name in NAMES}


def build(batch: int, vocab: int, device: torch.device, *, repetition_penalty: Any = 1.0,
          presence_penalty: Any = 0.0, frequency_penalty: Any = 0.0,
          no_repeat_ngram_size: Any = 0, sequence_bias: Any = None,
          dry_multiplier: Any = 0.0, dry_base: Any = 1.75, dry_allowed_length: Any = 2,
          dry_penalty_last_n: Any = -1, dry_sequence_breakers: Any = None,
          prompt_token_ids: Any = None,
          output_token_ids: Any = None, output_token_counts: Any = None, logit_bias: Any = None,
          allowed_token_ids: Any = None, banned_token_ids: Any = None, token_bitmask: Any = None,
          min_tokens: Any = 0, eos_token_id: Any = None, stop_token_ids: Any = None,
          num_generated: Any = None, ignore_eos: bool = False,
          begin_suppress_tokens: Any = None) -> Optional[Edits]:
    """Validates stages 1-3 arguments (every one given, also when its stage is off); None when
    none of them changes anything."""
    given = locals()
    if all_off(given):
        return None
    # Only these change a logit; the rest (history, EOS, counts) only feed them.
    changes = not all_off({name: given[name] for name in (
        "repetition_penalty", "presence_penalty", "frequency_penalty", "no_repeat_ngram_size",
        "sequence_bias", "logit_bias", "dry_multiplier",
        "allowed_token_ids", "banned_token_ids", "token_bitmask", "min_tokens",
        "begin_suppress_tokens")})
    prompt = id_rows("prompt_token_ids", prompt_token_ids, batch, vocab, device, False)
    output = id_rows("output_token_ids", output_token_ids, batch, vocab, device, False)
    counts = _counts(output_token_counts, output, device)
    ngram = arguments.param("no_repeat_ngram_size", no_repeat_ngram_size, batch,
                            NO_REPEAT_NGRAM_SIZE, device)
    for name in ("no_repeat_ngram_size", "dry_multiplier"):
        if counts is not None and not is_default(given[name], 0):
            raise ValueError(f"{name} reads the output in order: pass the output as "
                             "output_token_ids in generation order, not unique ids with "
                             "output_token_counts")
    stop = _stop_rows(eos_token_id, stop_token_ids, ignore_eos, batch, vocab, device)
    min_tokens_p = arguments.param("min_tokens", min_tokens, batch, MIN_TOKENS, device)
    if num_generated is not None:
        generated = arguments.param("num_generated", num_generated, batch, MIN_TOKENS, device)
    elif output.ids.shape[1] and (not is_default(min_tokens, 0)
                                  or begin_suppress_tokens is not None):
        # Only min_tokens and begin_suppress_tokens read it: no pass over the output ids when
        # those are off.
        generated = arguments.Param(0, (output.ids >= 0).sum(dim=1).contiguous())
    else:
        generated = arguments.Param(0)
    bias, bias_values = _bias_rows(logit_bias, batch, vocab, device)
    sequences, sequence_values = _sequence_rows(sequence_bias, batch, vocab, device)
    if counts is not None and bool((sequences.ids[:, 1:] >= 0).logical_and(
            sequences.ids[:, :-1] >= 0).any()):
        raise ValueError("sequence_bias with sequences of two or more ids reads the output in "
                         "order: pass the output as output_token_ids in generation order, not "
                         "unique ids with output_token_counts")
    edits = Edits(
        prompt=prompt, output=output, output_counts=counts,
        repetition_penalty=arguments.param("repetition_penalty", repetition_penalty, batch,
                                         REPETITION_PENALTY, device),
        frequency_penalty=arguments.param("frequency_penalty", frequency_penalty, batch, PENALTY,
                                        device),
        presence_penalty=arguments.param("presence_penalty", presence_penalty, batch, PENALTY,
                                       device),
        no_repeat_ngram_size=ngram,
        dry_multiplier=arguments.param("dry_multiplier", dry_multiplier, batch, DRY_MULTIPLIER,
                                       device),
        dry_base=arguments.param("dry_base", dry_base, batch, DRY_BASE, device),
        dry_allowed_length=arguments.param("dry_allowed_length", dry_allowed_length, batch,
                                           DRY_ALLOWED_LENGTH, device),
        dry_penalty_last_n=arguments.param("dry_penalty_last_n", dry_penalty_last_n, batch,
                                           DRY_PENALTY_LAST_N, device),
        dry_breakers=_breaker_rows(dry_sequence_breakers, batch, vocab, device),
        bias=bias, bias_values=bias_values,
        sequences=sequences, sequence_values=sequence_values,
        allowed=id_rows("allowed_token_ids", allowed_token_ids, batch, vocab, device, True,
                        empty_row="would mask every token; pass None for no restriction"),
        banned=id_rows("banned_token_ids", banned_token_ids, batch, vocab, device, True),
        stop=stop, min_tokens=min_tokens_p, num_generated=generated,
        bitmask=bitmask_rows(token_bitmask, batch, vocab, device),
        begin_suppress=id_rows("begin_suppress_tokens", begin_suppress_tokens, batch, vocab,
                               device, True),
    )
    return edits if changes else None


def is_default(v: Any, default: float) -> bool:
    """v is a plain number equal to the parameter's off value."""
    if type(v) in (int, float):  # the common case, without the slow ABC check
        return v == default
    return isinstance(v, numbers.Number) and not isinstance(v, bool) and v == default
