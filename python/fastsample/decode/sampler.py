"""fastsample.Sampler: the per-step object of a decode loop over a changing batch of requests."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence

import torch

from ..functional.scoring import PromptLogprobs, prompt_logprobs
from ..functional.speculative import verify
from ..adapters.hf import with_prompt_length
from ..kernel import cuda, launch
from ..requests import arguments, decoding, mirostat
from ..requests.sampling_batch import SamplingBatch, reads_history
from ..requests.sampling_params import SamplingParams, check_params


@dataclass
class StepOutput:
    """One request's result of a step.

    token: the sampled id. finished / finish_reason: "length" (max_tokens reached), "eos", or
    "stop" (a stop token id or stop string, or the request's grammar ended); None while
    running. text: the decoded output so far
    with a stop string and a final EOS/stop token excluded (None without a tokenizer).
    logprob, top_ids, top_logprobs: when the request asked for logprobs (else None).
    prompt_logprobs: on a request's first step when it asked for them (else None): the raw
    logprob of each prompt token after the first, with its top alternatives
    (fastsample.PromptLogprobs: logprobs [L-1], top_ids [L-1, n], top_logprobs [L-1, n]).
    """

    request_id: Hashable
    token: int
    finished: bool
    finish_reason: Optional[str]
    text: Optional[str] = None
    logprob: Optional[float] = None
    top_ids: Optional[List[int]] = None
    top_logprobs: Optional[List[float]] = None
    prompt_logprobs: Optional[PromptLogprobs] = None


class StepOutputs(List[StepOutput]):
    """What `Sampler.step` returns: one StepOutput per row, in the row order of the step, and
    `tokens`, the same tokens as a LongTensor[B] on the logits' device (ready to feed the model
    without a round trip through Python ints)."""

    tokens: torch.Tensor

    def __init__(self, outputs: List[StepOutput], tokens: torch.Tensor):
        super().__init__(outputs)
        self.tokens = tokens


@dataclass
class VerifyStepOutput:
    """One request's result of `Sampler.verify`.

    tokens: the tokens this step emitted, in order: the accepted drafts, then the emitted
    (residual or bonus) token, cut after a token that finished the request.
    num_accepted: how many drafts were accepted (the drafts' KV entries to keep).
    finished / finish_reason / text: as StepOutput's, after the last of `tokens`.
    logprobs, top_ids, top_logprobs: one entry per token of `tokens` when the request asked for
    logprobs (else None).
    texts: the text after each token of `tokens` (each None without a tokenizer), as a step
    producing that token would have shown it.
    """

    request_id: Hashable
    tokens: List[int]
    num_accepted: int
    finished: bool
    finish_reason: Optional[str]
    text: Optional[str] = None
    logprobs: Optional[List[float]] = None
    top_ids: Optional[List[List[int]]] = None
    top_logprobs: Optional[List[List[float]]] = None
    texts: List[Optional[str]] = field(default_factory=list)


class VerifyStepOutputs(List[VerifyStepOutput]):
    """What `Sampler.verify` returns: one VerifyStepOutput per row, in row order, and the
    kernel's `tokens` (int64 [B, S + 1] on the device, -1 after each row's last) and
    `num_accepted` (int64 [B]) as fastsample.verify returned them."""

    tokens: torch.Tensor
    num_accepted: torch.Tensor

    def __init__(self, outputs: List[VerifyStepOutput], tokens: torch.Tensor,
                 num_accepted: torch.Tensor):
        super().__init__(outputs)
        self.tokens = tokens
        self.num_accepted = num_accepted


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
    scored: bool = False  # its prompt_logprobs were returned

    def __post_init__(self):
        # What each step's finish check reads, looked up once.
        p = self.params
        self.ends_eos = frozenset(() if p.ignore_eos else self.eos)
        self.ends_stop = frozenset(p.stop_token_ids)
        self.min_tokens = p.min_tokens
        self.max_tokens = p.max_tokens if p.max_tokens is not None else float("inf")


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
        if not arguments.is_int(vocab_size):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__} "
                            f"{vocab_size!r}")
        if not 1 <= vocab_size <= arguments.MAX_VOCAB:
            raise ValueError(f"vocab_size={vocab_size!r} is out of range; allowed: 1 <= V <= "
                             f"{arguments.MAX_VOCAB}")
        arguments.check_generator(generator)
        self.vocab_size = int(vocab_size)
        self.device = torch.device(device)
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device={str(self.device)!r}: the Sampler runs on 'cpu' or 'cuda'")
        cuda.check_sampler_device(self.device)
        # Once the device is known to work: as tensors on it report theirs ('cuda' -> 'cuda:N').
        self.device = arguments.canonical_device(self.device)
        self.tokenizer = tokenizer
        if eos_token_id is None and tokenizer is not None:
            eos_token_id = getattr(tokenizer, "eos_token_id", None)
        ids = () if eos_token_id is None else (
            (eos_token_id,) if arguments.is_int(eos_token_id) else eos_token_id)
        self._eos = arguments.token_ids("eos_token_id", ids, self.vocab_size)
        self._generator = generator
        self._lock = threading.RLock()
        self._requests: List[_Request] = []
        self._pending: List[_Request] = []
        self._removed: set = set()
        # The rows' device state: parameters, random streams, histories, masks, logprobs.
        self._batch = SamplingBatch((), self.device, generator, eos_token_ids=self._eos,
                                    tokenizer=tokenizer, vocab_size=self.vocab_size)

    # -- membership ----------------------------------------------------------------------
    @property
    def request_ids(self) -> List[Hashable]:
        """Ids of the active requests, in the row order `step` expects."""
        with self._lock:
            return [r.id for r in self._requests if r.id not in self._removed] + \
                [r.id for r in self._pending]

    @property
    def eos_token_ids(self) -> tuple:
        """The default EOS ids (eos_token_id, else the tokenizer's) of requests without their
        own."""
        return self._eos

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
        check_params("params", params)
        if request_id in self.request_ids:
            raise ValueError(f"request {request_id!r} is already in the batch")
        try:
            prompt = list(arguments.token_ids("prompt_token_ids", prompt_token_ids,
                                                 self.vocab_size))
        except (TypeError, ValueError) as e:
            raise type(e)(f"request {request_id!r}: {e}") from None
        for name in ("allowed_token_ids", "banned_token_ids", "stop_token_ids", "eos_token_ids",
                     "begin_suppress_tokens"):
            for t in getattr(params, name) or ():
                if not 0 <= t < self.vocab_size:
                    raise ValueError(f"request {request_id!r}: {name} holds {t}, out of range; "
                                     f"allowed: 0 <= id < V={self.vocab_size}")
        for t, _ in params.logit_bias or ():
            if not 0 <= t < self.vocab_size:
                raise ValueError(f"request {request_id!r}: logit_bias token {t} is out of range; "
                                 f"allowed: 0 <= id < V={self.vocab_size}")
        for name, sequences in (("sequence_bias sequence",
                                 [ids for ids, _ in params.sequence_bias or ()]),
                                ("dry_sequence_breakers breaker",
                                 params.dry_sequence_breakers or ())):
            for ids in sequences:
                if max(ids) >= self.vocab_size:
                    raise ValueError(f"request {request_id!r}: {name} {list(ids)} holds "
                                     f"{max(ids)}, out of range; allowed: 0 <= id < "
                                     f"V={self.vocab_size}")
        why = decoding.per_step_refusal(params, "Sampler")
        if why:
            raise ValueError(f"request {request_id!r}: {why}")
        if params.stop and self.tokenizer is None:
            raise ValueError(f"request {request_id!r}: stop strings need a tokenizer "
                             "(Sampler(..., tokenizer=...))")
        if params.structured_output is not None:
            self._check_grammar(request_id, params)
        # A generation config's max_length / min_length count the prompt: this one.
        params = with_prompt_length(params, len(prompt))
        seed = params.seed
        if seed is None:
            seed = int(arguments.draw_seeds(torch.empty(1, dtype=torch.int64), self._generator)[0])
        resolved = replace(params.resolve(seed), seed=seed)
        eos = resolved.eos_token_ids if resolved.eos_token_ids is not None else self._eos
        modes = {mirostat.logprobs_mode(r.params) for r in self._requests + self._pending
                 if r.id not in self._removed} - {None}
        mode = mirostat.logprobs_mode(resolved)
        if mode is not None and modes - {mode}:
            raise ValueError(f"request {request_id!r}: logprobs_mode={mode!r} (a mirostat "
                             f"request reads processed logprobs), but the batch's requests use "
                             f"{modes.pop()!r}; requests in one batch must share logprobs_mode")
        self._pending.append(_Request(request_id, resolved, prompt, seed, tuple(eos),
                                      text="" if self.tokenizer is not None else None,
                                      scored=resolved.prompt_logprobs is None))

    def _check_grammar(self, request_id: Hashable, params: SamplingParams) -> None:
        """A structured request is checked and its grammar compiled when it is added (the
        compiled grammar is cached for when it joins the batch)."""
        if self.tokenizer is None:
            raise ValueError(f"request {request_id!r}: structured_output needs the model's "
                             f"tokenizer (Sampler(..., tokenizer=...))")
        try:
            self._batch.check_grammar(params)
        except (TypeError, ValueError, ImportError) as e:
            raise type(e)(f"request {request_id!r}: {e}") from None

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
    def _apply_membership(self) -> None:
        """The batch's rows follow the requests: the removed dropped, the pending appended."""
        if not self._removed and not self._pending:
            return
        keep = [i for i, r in enumerate(self._requests) if r.id not in self._removed]
        batch = self._batch
        if len(keep) != len(self._requests):
            batch.keep(keep)
            self._requests = [self._requests[i] for i in keep]
            if batch.tracks_history and not any(reads_history(r.params)
                                                for r in self._requests):
                batch.stop_history()  # frees the history; rebuilt from the host if needed
        self._removed = set()
        if self._pending:
            pending = self._pending
            if not batch.tracks_history and any(reads_history(r.params) for r in pending) \
                    and self._requests:
                # The others' outputs were not kept on the device while no request read them.
                batch.start_history([r.output for r in self._requests])
            # prompt_logprobs are the Sampler's (step's prompt_logits), not the batch's.
            batch.append([replace(r.params, prompt_logprobs=None) for r in pending],
                         prompt_token_ids=[r.prompt for r in pending],
                         output_token_ids=[r.output for r in pending])
            self._requests += pending
            self._pending = []

    # -- the step --------------------------------------------------------------------------
    def step(self, logits: torch.Tensor,
             prompt_logits: Optional[Mapping[Hashable, torch.Tensor]] = None) -> StepOutputs:
        """Samples one token for every active request. logits: [len(self), V] (float32, float16
        or bfloat16) on `device`, row i for request_ids[i]. Returns one StepOutput per row and,
        as `.tokens`, the tokens as a LongTensor[len(self)] on `device`. Finished requests leave
        the batch after this step.
        prompt_logits: {request id: [L, V] logits over its L prompt tokens (position i predicts
        token i + 1: a prefill's logits)} for the requests that asked for prompt_logprobs, at
        their first step; they come back as that step's StepOutput.prompt_logprobs (raw).
        Raises ValueError naming the request when a row has no valid token or prompt logits
        it asked for are missing; a step that raises changes nothing."""
        with self._lock:
            return self._step(logits, prompt_logits or {})

    def _step(self, logits: torch.Tensor, prompt_logits: Mapping[Hashable, torch.Tensor]
              ) -> StepOutputs:
        self._apply_membership()
        scores = self._score_prompts(prompt_logits)  # raises before any state changed
        batch = len(self._requests)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape != (batch, self.vocab_size):
            raise ValueError(f"logits must have shape [{batch}, {self.vocab_size}] (one row per "
                             f"active request, in request_ids order), got "
                             f"{tuple(getattr(logits, 'shape', ()))}")
        if logits.device != self.device:
            raise ValueError(f"logits are on {logits.device}, the Sampler's state on {self.device}")
        if batch == 0:
            return StepOutputs([], torch.empty(0, dtype=torch.int64, device=self.device))
        if logits.dtype not in arguments.FLOAT_DTYPES or logits.stride(1) != 1:
            logits = arguments.as_logits(logits)
        args, edits = self._batch.kernel_args(logits)
        out = launch.run_sample(logits, args, edits, self._batch.logprob_outputs(),
                                return_valid=True)
        results = self._finish(out)  # raises before any state changed
        for req, res in zip(self._requests, results):
            if req.id in scores:
                res.prompt_logprobs = scores[req.id]
                req.scored = True
        # Device-side bookkeeping, queued after the kernel: Philox offsets, and the history and
        # counts when a request's penalties or min_tokens read them; grammars take the tokens.
        self._batch.advance(out.tokens, out.logprobs)
        self._end_grammars(results)
        return results

    def verify(self, target_logits: torch.Tensor, draft_token_ids: Any,
               draft_probs: Optional[torch.Tensor] = None) -> VerifyStepOutputs:
        """One speculative step for every active request: verifies each row's chain of S drafts
        (fastsample.verify with the requests' parameters and histories) and records the
        emitted tokens. target_logits: [len(self), S + 1, V] on `device` (position j scores the
        token after the first j drafts); draft_token_ids: int64 [len(self), S] (-1: no draft,
        ending the row's chain); draft_probs: [len(self), S, V] proposals, or None (one-hot).
        Each row's tokens stop after one that finishes its request; its random stream moves
        on by the tokens it emitted. Raises ValueError for mirostat or grammar rows, requests
        whose prompt_logprobs are still to come (step them first), and rows with no valid
        token; a call that raises changes nothing."""
        with self._lock:
            self._apply_membership()
            waiting = [r.id for r in self._requests if not r.scored]
            if waiting:
                raise ValueError(f"requests {waiting!r} asked for prompt_logprobs: their first "
                                 f"token comes from step(logits, prompt_logits=...)")
            batch = len(self._requests)
            if not isinstance(target_logits, torch.Tensor) or target_logits.dim() != 3 or \
                    target_logits.shape[0] != batch or target_logits.shape[2] != self.vocab_size:
                raise ValueError(f"target_logits must have shape [{batch}, S + 1, "
                                 f"{self.vocab_size}] (one row per active request), got "
                                 f"{tuple(getattr(target_logits, 'shape', ()))}")
            if target_logits.device != self.device:
                raise ValueError(f"target_logits are on {target_logits.device}, the Sampler's "
                                 f"state on {self.device}")
            if batch == 0:
                return VerifyStepOutputs(
                    [], torch.empty((0, target_logits.shape[1]), dtype=torch.int64,
                                    device=self.device),
                    torch.empty(0, dtype=torch.int64, device=self.device))
            out = verify(target_logits, draft_token_ids, draft_probs=draft_probs,
                         batch=self._batch, return_valid=True)
            results = self._finish_verified(out)
            self._batch.advance_verified(out.tokens, [len(r.tokens) for r in results])
            return results

    def _finish_verified(self, out) -> VerifyStepOutputs:
        """Verify's host side: each request's tokens, cut after a finishing one. Commits only
        when every row succeeded."""
        valid = out.valid.tolist()
        if not all(valid):
            bad = [req.id for req, ok in zip(self._requests, valid) if not ok]
            raise ValueError(f"requests {bad!r} have no valid token at a verified position: "
                             "every token of that row is -inf/NaN or masked")
        tokens, accepted = out.tokens.tolist(), out.num_accepted.tolist()
        lp = None
        if out.logprobs is not None:
            lp = (out.logprobs.tolist(), out.top_ids.tolist(), out.top_logprobs.tolist())
        results, ends, appended = [], [], []
        try:
            for i, req in enumerate(self._requests):
                emitted, texts, reason, text = [], [], None, req.text
                appended.append((req, emitted))
                for token in tokens[i][:accepted[i] + 1]:
                    req.output.append(token)
                    emitted.append(token)
                    reason, text = self._finish_reason(req, token)
                    texts.append(text)
                    if reason is not None:
                        break
                ends.append((req, reason, text))
                res = VerifyStepOutput(req.id, emitted, min(accepted[i], len(emitted)),
                                       reason is not None, reason, text, texts=texts)
                if lp is not None and req.params.logprobs is not None:
                    n, k = req.params.logprobs, len(emitted)
                    res.logprobs = lp[0][i][:k]
                    res.top_ids = [ids[:n] for ids in lp[1][i][:k]]
                    res.top_logprobs = [v[:n] for v in lp[2][i][:k]]
                results.append(res)
        except BaseException:
            for req, emitted in appended:
                del req.output[len(req.output) - len(emitted):]
            raise
        self._commit_ends(ends)
        return VerifyStepOutputs(results, out.tokens, out.num_accepted)

    def _end_grammars(self, results: StepOutputs) -> None:
        """Requests whose grammar ended with this step's token finish with "stop"."""
        if not self._batch.flags.any_grammar:
            return
        for req, res, ended in zip(self._requests, results, self._batch.grammar_terminated()):
            if ended and res.finish_reason != "stop":
                res.finished, res.finish_reason = True, "stop"
                req.finish_reason = "stop"
                self._removed.add(req.id)

    def _score_prompts(self, prompt_logits: Mapping[Hashable, torch.Tensor]
                       ) -> Dict[Hashable, PromptLogprobs]:
        """Raw prompt logprobs of the requests at their first step that asked for them."""
        wanting = {r.id: r for r in self._requests if not r.scored}
        extra = [k for k in prompt_logits if k not in wanting]
        if extra:
            raise ValueError(f"prompt_logits for {extra!r}: only requests at their first step "
                             f"that asked for prompt_logprobs take them")
        missing = [k for k in wanting if k not in prompt_logits]
        if missing:
            raise ValueError(f"requests {missing!r} asked for prompt_logprobs: pass "
                             f"step(logits, prompt_logits={{id: [L, V] prefill logits}})")
        out = {}
        for rid, req in wanting.items():
            given = prompt_logits[rid]
            length = len(req.prompt)
            if not isinstance(given, torch.Tensor) or given.dim() != 2 or \
                    given.shape != (length, self.vocab_size):
                raise ValueError(f"request {rid!r}: prompt_logits must be [{length}, "
                                 f"{self.vocab_size}] (one row per prompt token), got "
                                 f"{tuple(getattr(given, 'shape', ()))}")
            n = req.params.prompt_logprobs
            if length < 2:  # no prompt token has a prefix to be scored under
                out[rid] = PromptLogprobs(torch.empty(0), torch.empty((0, n), dtype=torch.int64),
                                          torch.empty((0, n)))
            else:
                out[rid] = prompt_logprobs(given[:-1], req.prompt[1:], n)
        return out

    @property
    def prompt_logits_wanted(self) -> List[Hashable]:
        """Requests whose next step needs their prompt_logits (they asked for
        prompt_logprobs and have not had a step yet)."""
        with self._lock:
            return [r.id for r in self._requests + self._pending
                    if not r.scored and r.id not in self._removed]

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
        self._commit_ends(ends)
        return StepOutputs(results, out.tokens)

    def _commit_ends(self, ends) -> None:
        """Records each (request, finish reason or None, text) of a step that succeeded."""
        for req, reason, text in ends:
            req.text = text
            if reason is not None:
                req.finish_reason = reason
                self._removed.add(req.id)

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

