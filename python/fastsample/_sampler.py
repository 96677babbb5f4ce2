"""fastsample.Sampler: the per-step object of a decode loop over a changing batch of requests."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import _cuda, _edits, _kernel, _params
from ._kernel import LogprobOutputs
from ._param_table import EDITS, FILTERS, TABLE
from ._sampling_params import SamplingParams


@dataclass
class StepOutput:
    """One request's result of a step.

    token: the sampled id. finished / finish_reason: "length" (max_tokens reached), "eos", or
    "stop" (a stop token id or stop string); None while running. text: the decoded output so far
    with a stop string and a final EOS/stop token excluded (None without a tokenizer).
    logprob, top_ids, top_logprobs: when the request asked for logprobs (else None).
    """

    request_id: Hashable
    token: int
    finished: bool
    finish_reason: Optional[str]
    text: Optional[str] = None
    logprob: Optional[float] = None
    top_ids: Optional[List[int]] = None
    top_logprobs: Optional[List[float]] = None


class StepOutputs(List[StepOutput]):
    """What `Sampler.step` returns: one StepOutput per row, in the row order of the step, and
    `tokens`, the same tokens as a LongTensor[B] on the logits' device (ready to feed the model
    without a round trip through Python ints)."""

    tokens: torch.Tensor

    def __init__(self, outputs: List[StepOutput], tokens: torch.Tensor):
        super().__init__(outputs)
        self.tokens = tokens


@dataclass
class _Request:
    id: Hashable
    params: SamplingParams
    prompt: List[int]
    seed: int
    eos: tuple
    output: List[int] = field(default_factory=list)
    text: Optional[str] = None
    finish_reason: Optional[str] = None

    def __post_init__(self):
        # What each step's finish check reads, looked up once.
        p = self.params
        self.ends_eos = frozenset(() if p.ignore_eos else self.eos)
        self.ends_stop = frozenset(p.stop_token_ids)
        self.min_tokens = p.min_tokens
        self.max_tokens = p.max_tokens if p.max_tokens is not None else float("inf")


_LIST_ROWS = ("prompt", "output", "bias_ids", "allowed", "banned", "stop")


class Sampler:
    """Samples every active request of a decode loop in one fused call per step.

    Requests join (`add`) and leave (`remove`, or by finishing) between steps; rows of the
    logits given to `step` follow `request_ids`. Per-row parameters, histories, offsets and the
    generated counts live on `device`: a step copies nothing to the device once the batch is
    stable; joining builds only the new rows, leaving drops rows on the device.

    A step that raises (a row with no valid token, a tokenizer error) changes nothing: the
    same call again draws the same tokens. The methods hold one lock, so a server thread may
    `add` or `remove` while the decode loop steps; calls from two threads run one at a time.

    Args:
        vocab_size: V of the logits.
        device: where the logits are (CPU or CUDA).
        tokenizer: optional; needed for stop strings and `text`.
        eos_token_id: default EOS id(s) for requests whose params have no eos_token_ids
            (else the tokenizer's).
        generator: draws the seed of requests without one (default: torch's default generator).
    """

    def __init__(self, vocab_size: int, *, device: Any = "cpu", tokenizer: Any = None,
                 eos_token_id: Any = None, generator: Optional[torch.Generator] = None):
        if not _params._is_int(vocab_size):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__} "
                            f"{vocab_size!r}")
        if not 1 <= vocab_size <= _params.MAX_VOCAB:
            raise ValueError(f"vocab_size={vocab_size!r} is out of range; allowed: 1 <= V <= "
                             f"{_params.MAX_VOCAB}")
        _params.check_generator(generator)
        self.vocab_size = int(vocab_size)
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device={str(self.device)!r}: the Sampler runs on 'cpu' or 'cuda'")
        _cuda.check_sampler_device(self.device)
        self.tokenizer = tokenizer
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None)
        ids = () if eos_token_id is None else (
            (eos_token_id,) if _params._is_int(eos_token_id) else eos_token_id)
        self._eos = self._token_ids("eos_token_id", ids)
        self._generator = generator
        self._lock = threading.RLock()
        self._requests: List[_Request] = []
        self._pending: List[_Request] = []
        self._removed: set = set()
        self._rows: Dict[str, torch.Tensor] = {}
        self._cap = 0
        self._edits_on = False            # some request needs stages 1-3
        self._history_on_device = False   # output/generated rows are kept current
        self._logprobs = None             # (max n, mode) over the requests asking
        self._prepared = None             # kernel argument wrappers over self._rows

    def _token_ids(self, name: str, ids: Any) -> tuple:
        """ids (a sequence or a 1-D integer tensor) as a tuple of ints in [0, V)."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex() or \
                    ids.dtype == torch.bool or ids.device.type == "meta":
                raise TypeError(f"{name} must be a 1-D integer tensor or a list of ints, got "
                                f"{ids.dtype} of shape {tuple(ids.shape)}")
            ids = ids.tolist()
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"{name} must be a list of int token ids, got "
                            f"{type(ids).__name__} {ids!r}")
        out = tuple(ids)
        for i, t in enumerate(out):
            if not _params._is_int(t):
                raise TypeError(f"{name}[{i}]={t!r}: token ids must be ints")
            if not 0 <= t < self.vocab_size:
                raise ValueError(f"{name}[{i}]={t} is out of range; allowed: 0 <= id < "
                                 f"V={self.vocab_size}")
        return tuple(int(t) for t in out)

    # -- membership ----------------------------------------------------------------------
    @property
    def request_ids(self) -> List[Hashable]:
        """Ids of the active requests, in the row order `step` expects."""
        with self._lock:
            return [r.id for r in self._requests if r.id not in self._removed] + \
                [r.id for r in self._pending]

    def __len__(self) -> int:
        return len(self.request_ids)

    def add(self, request_id: Hashable, params: SamplingParams,
            prompt_token_ids: Sequence[int] = ()) -> None:
        """Adds a request (its row is last). request_id: any hashable value, unique in the
        batch. prompt_token_ids: ints in [0, V) (a list or a 1-D integer tensor); they feed the
        repetition penalty."""
        with self._lock:
            self._add(request_id, params, prompt_token_ids)

    def _add(self, request_id: Hashable, params: SamplingParams,
             prompt_token_ids: Sequence[int]) -> None:
        try:
            hash(request_id)
        except TypeError:
            raise TypeError(f"request_id must be hashable (a str, an int, ...), got "
                            f"{type(request_id).__name__} {request_id!r}") from None
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be a fastsample.SamplingParams, got {type(params).__name__}")
        if request_id in self.request_ids:
            raise ValueError(f"request {request_id!r} is already in the batch")
        try:
            prompt = list(self._token_ids("prompt_token_ids", prompt_token_ids))
        except (TypeError, ValueError) as e:
            raise type(e)(f"request {request_id!r}: {e}") from None
        for name in ("allowed_token_ids", "banned_token_ids", "stop_token_ids", "eos_token_ids"):
            for t in getattr(params, name) or ():
                if not 0 <= t < self.vocab_size:
                    raise ValueError(f"request {request_id!r}: {name} holds {t}, out of range; "
                                     f"allowed: 0 <= id < V={self.vocab_size}")
        for t, _ in params.logit_bias or ():
            if not 0 <= t < self.vocab_size:
                raise ValueError(f"request {request_id!r}: logit_bias token {t} is out of range; "
                                 f"allowed: 0 <= id < V={self.vocab_size}")
        if params.stop and self.tokenizer is None:
            raise ValueError(f"request {request_id!r}: stop strings need a tokenizer "
                             "(Sampler(..., tokenizer=...))")
        seed = params.seed
        if seed is None:
            seed = int(_params.draw_seeds(torch.empty(1, dtype=torch.int64), self._generator)[0])
        resolved = params.resolve(seed)
        eos = resolved.eos_token_ids if resolved.eos_token_ids is not None else self._eos
        self._pending.append(_Request(request_id, resolved, prompt, seed, tuple(eos),
                                      text="" if self.tokenizer is not None else None))

    def remove(self, request_id: Hashable) -> None:
        """Drops a request before the next step."""
        with self._lock:
            self._remove(request_id)

    def _remove(self, request_id: Hashable) -> None:
        if request_id not in self.request_ids:
            raise KeyError(f"request {request_id!r} is not in the batch")
        pending = [r for r in self._pending if r.id != request_id]
        if len(pending) != len(self._pending):
            self._pending = pending
        else:
            self._removed.add(request_id)

    # -- per-row device state ------------------------------------------------------------
    def _new_rows(self, reqs: List[_Request]) -> Dict[str, torch.Tensor]:
        # Every per-row parameter of the table: the request's value, or its decode state.
        rows: Dict[str, Any] = {"seed": [r.seed for r in reqs],
                                "offset": [len(r.output) for r in reqs],
                                "num_generated": [len(r.output) for r in reqs]}
        for p in TABLE:
            if p.name not in rows:
                cast = int if p.range.integer else float
                rows[p.name] = [cast(getattr(r.params, p.name)) for r in reqs]
        lists = {
            "prompt": [r.prompt for r in reqs],
            "output": [r.output for r in reqs],
            "bias_ids": [[t for t, _ in r.params.logit_bias or ()] for r in reqs],
            "allowed": [list(r.params.allowed_token_ids or ()) for r in reqs],
            "banned": [list(r.params.banned_token_ids or ()) for r in reqs],
            "stop": [list(() if r.params.ignore_eos else r.eos) + list(r.params.stop_token_ids)
                     for r in reqs],
        }
        out = {p.name: torch.tensor(rows[p.name], dtype=p.dtype) for p in TABLE}
        for name, values in lists.items():
            out[name] = _padded(values, -1, torch.int64)
        out["bias_values"] = _padded([[b for _, b in r.params.logit_bias or ()] for r in reqs],
                                     0.0, torch.float32)
        return {k: v.to(self.device) for k, v in out.items()}

    def _apply_membership(self) -> None:
        if not self._removed and not self._pending:
            return
        keep = [i for i, r in enumerate(self._requests) if r.id not in self._removed]
        if self._rows and len(keep) != len(self._requests):
            index = torch.tensor(keep, dtype=torch.int64, device=self.device)
            self._rows = {k: v.index_select(0, index) for k, v in self._rows.items()}
        self._requests = [self._requests[i] for i in keep]
        self._removed = set()
        if self._pending:
            new = self._new_rows(self._pending)
            self._rows = new if not self._requests else {
                k: _cat_rows(self._rows[k], new[k]) for k in new}
            self._requests += self._pending
            self._pending = []
        if not self._requests:
            self._rows = {}
        params = [r.params for r in self._requests]
        self._edits_on = any(
            p.repetition_penalty != 1.0 or p.frequency_penalty != 0.0 or p.presence_penalty != 0.0
            or p.logit_bias or p.allowed_token_ids or p.banned_token_ids or p.min_tokens > 0
            for p in params)
        if self._rows and self._edits_on and not self._history_on_device:
            # Histories were not kept on the device while no request needed them: build them
            # once from the host copies now that one does.
            self._rows["output"] = _padded([r.output for r in self._requests], -1,
                                           torch.int64).to(self.device)
            self._rows["num_generated"] = torch.tensor([len(r.output) for r in self._requests],
                                                   dtype=torch.int64, device=self.device)
        self._history_on_device = self._edits_on
        self._cap = self._rows["output"].shape[1] if self._rows else 0
        asking = [p for p in params if p.logprobs is not None]
        modes = {p.logprobs_mode for p in asking}
        if len(modes) > 1:
            raise ValueError("requests in one batch must share logprobs_mode; got "
                             + ", ".join(f"{r.id!r}: {r.params.logprobs_mode}"
                                         for r in self._requests if r.params.logprobs is not None))
        self._logprobs = (max(p.logprobs for p in asking), modes.pop()) if asking else None
        self._prepared = None

    def _ensure_capacity(self) -> bool:
        """Room in the device history for this step's token; True when it had to grow."""
        longest = max(len(r.output) for r in self._requests)
        if longest < self._cap:
            return False
        new_cap = max(16, 2 * self._cap, longest + 1)
        self._rows["output"] = F.pad(self._rows["output"], (0, new_cap - self._cap), value=-1)
        self._cap = new_cap
        return True

    def _edits(self) -> Optional[_edits.Edits]:
        if not self._edits_on:
            return None
        r = self._rows
        P = _params.Param
        return _edits.Edits(
            prompt=_edits.IdRows(r["prompt"]), output=_edits.IdRows(r["output"]),
            output_counts=None, bias=_edits.IdRows(r["bias_ids"]), bias_values=r["bias_values"],
            allowed=_edits.IdRows(r["allowed"]), banned=_edits.IdRows(r["banned"]),
            stop=_edits.IdRows(r["stop"]), bitmask=None,
            **{name: P(0, r[name]) for name in EDITS})

    # -- the step --------------------------------------------------------------------------
    def step(self, logits: torch.Tensor) -> StepOutputs:
        """Samples one token for every active request. logits: [len(self), V] (float32, float16
        or bfloat16) on `device`, row i for request_ids[i]. Returns one StepOutput per row and,
        as `.tokens`, the tokens as a LongTensor[len(self)] on `device`. Finished requests leave
        the batch after this step.
        Raises ValueError naming the request when a row has no valid token; a step that
        raises changes nothing."""
        with self._lock:
            return self._step(logits)

    def _step(self, logits: torch.Tensor) -> StepOutputs:
        self._apply_membership()
        batch = len(self._requests)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape != (batch, self.vocab_size):
            raise ValueError(f"logits must have shape [{batch}, {self.vocab_size}] (one row per "
                             f"active request, in request_ids order), got "
                             f"{tuple(getattr(logits, 'shape', ()))}")
        if logits.device != self.device:
            raise ValueError(f"logits are on {logits.device}, the Sampler's state on {self.device}")
        if batch == 0:
            return StepOutputs([], torch.empty(0, dtype=torch.int64, device=self.device))
        r = self._rows
        if self._edits_on and self._ensure_capacity():
            self._prepared = None
        if logits.dtype not in _params.FLOAT_DTYPES or logits.stride(1) != 1:
            logits = _params.as_logits(logits)
        if self._prepared is None:
            # The tensors are updated in place from here on, so the arguments stay valid.
            P = _params.Param
            params = [(name, P(0, r[name])) for name in FILTERS]
            edits = self._edits()
            # The Edits object keeps the tensors its kernel arguments point into alive.
            self._prepared = (_kernel.batch_args(logits, params), edits,
                              None if edits is None else edits.kernel_args())
        args, _, edit_args = self._prepared
        _kernel.set_logits(args, logits)
        lp = None
        if self._logprobs is not None:
            lp = LogprobOutputs(self._logprobs[0], self._logprobs[1] == "processed", batch,
                                self.device)
        out = _kernel.run_sample(logits, args, edit_args, lp, return_valid=True)
        results = self._finish(out)  # raises before any state changed
        # Device-side bookkeeping, queued after the kernel: Philox offsets, and the history and
        # counts when a request's penalties or min_tokens read them.
        r["offset"] += 1
        if self._edits_on:
            r["output"].scatter_(1, r["num_generated"][:, None], out.tokens[:, None])
            r["num_generated"] += 1
        return results

    def _finish(self, out) -> StepOutputs:
        """The host side of a step: each request's token, text and finish reason. Commits only
        when every row succeeded (tokens valid, the tokenizer did not raise)."""
        tokens = out.tokens.tolist()
        if min(tokens) < 0:
            bad = [req.id for req, t in zip(self._requests, tokens) if t < 0]
            raise ValueError(f"requests {bad!r} have no valid token: every token of their row is "
                             "-inf/NaN or masked (allowed/banned ids, min_tokens, logit_bias)")
        lp = None
        if out.logprobs is not None:
            lp = (out.logprobs.tolist(), out.top_ids.tolist(), out.top_logprobs.tolist())
        results, ends, appended = [], [], 0
        try:
            for i, (req, token) in enumerate(zip(self._requests, tokens)):
                req.output.append(token)
                appended += 1
                reason, text = self._finish_reason(req, token)
                ends.append((req, reason, text))
                res = StepOutput(req.id, token, reason is not None, reason, text)
                if lp is not None and req.params.logprobs is not None:
                    n = req.params.logprobs
                    res.logprob, res.top_ids, res.top_logprobs = lp[0][i], lp[1][i][:n], lp[2][i][:n]
                results.append(res)
        except BaseException:
            for req in self._requests[:appended]:
                req.output.pop()
            raise
        for req, reason, text in ends:
            req.text = text
            if reason is not None:
                req.finish_reason = reason
                self._removed.add(req.id)
        return StepOutputs(results, out.tokens)

    def _finish_reason(self, req: _Request, token: int):
        """(finish reason or None, the request's text after this token)."""
        n = len(req.output)
        reason = None
        text = req.text
        if n >= req.min_tokens:
            if token in req.ends_eos:
                reason = "eos"
            elif token in req.ends_stop:
                reason = "stop"
        if self.tokenizer is not None:
            stop = req.params.stop
            shown = req.output[:-1] if reason is not None else req.output
            text = self.tokenizer.decode(shown, skip_special_tokens=True)
            if reason is None and stop and n >= req.min_tokens:
                hits = [(text.find(s), s) for s in stop if s in text]
                if hits:
                    text = text[:min(hits)[0]]
                    reason = "stop"
        if reason is None and n >= req.max_tokens:
            reason = "length"
        return reason, text


def _padded(rows: List[list], pad: Any, dtype: torch.dtype) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    t = torch.full((len(rows), width), pad, dtype=dtype)
    for i, r in enumerate(rows):
        if r:
            t[i, :len(r)] = torch.tensor(r, dtype=dtype)
    return t


def _cat_rows(old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    if old.dim() == 2 and old.shape[1] != new.shape[1]:
        width = max(old.shape[1], new.shape[1])
        pad = 0.0 if old.is_floating_point() else -1
        old = F.pad(old, (0, width - old.shape[1]), value=pad)
        new = F.pad(new, (0, width - new.shape[1]), value=pad)
    return torch.cat([old, new])
