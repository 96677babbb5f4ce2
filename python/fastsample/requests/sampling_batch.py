"""fastsample.SamplingBatch: the per-row state of a batch of requests, as the kernels read it."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..kernel import launch
from ..kernel.param_table import EDITS, FILTERS, TABLE
from ..grammar import GrammarRows, grammar_spec
from . import arguments, decoding, edit_arguments, mirostat
from .sampling_params import SamplingParams, check_params

# A row's id lists are those of the kernels' EditArgs (edit_arguments.ID_LISTS): [B, L] int64
# tensors padded with -1, bias_values float32 beside `bias`. `stop` holds the EOS ids (unless
# ignore_eos) and the stop ids: masked while a row has generated fewer than min_tokens tokens.


@dataclass(frozen=True)
class BatchFlags:
    """What a fused call can skip for this batch."""

    all_greedy: bool
    any_greedy: bool
    any_top_k: bool
    any_top_p: bool
    any_min_p: bool
    any_penalties: bool
    any_logit_bias: bool
    any_masks: bool
    max_logprobs: int  # -1: no row asks for logprobs
    any_top_n_sigma: bool = False
    any_xtc: bool = False
    any_grammar: bool = False    # some row has a structured_output
    any_edits: bool = False      # some row needs stages 1-3 (penalties, bias, masks, min_tokens)
    needs_history: bool = False  # some row reads its output history (penalties, n-grams, ...)

    @staticmethod
    def of(rows: Sequence[SamplingParams]) -> "BatchFlags":
        greedy = [p.temperature == 0.0 for p in rows]
        sampled = [p for p, g in zip(rows, greedy) if not g]
        return BatchFlags(
            all_greedy=bool(rows) and all(greedy),
            any_greedy=any(greedy),
            any_top_k=any(p.top_k > 0 or p.mirostat == 1 for p in sampled),
            any_top_p=any(p.top_p < 1.0 for p in sampled),
            any_min_p=any(p.min_p > 0.0 for p in sampled),
            any_penalties=any(_has_penalties(p) for p in rows),
            any_logit_bias=any(bool(p.logit_bias) for p in rows),
            any_masks=any(p.allowed_token_ids is not None or bool(p.banned_token_ids)
                          for p in rows),
            max_logprobs=max([-1] + [p.logprobs for p in rows if p.logprobs is not None]),
            any_top_n_sigma=any(p.top_n_sigma > 0.0 for p in sampled),
            any_xtc=any(p.xtc_probability > 0.0 for p in sampled),
            any_grammar=any(p.structured_output is not None for p in rows),
            any_edits=any(_has_edits(p) for p in rows),
            needs_history=any(reads_history(p) for p in rows),
        )


def _has_penalties(p: SamplingParams) -> bool:
    return p.repetition_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0


def reads_history(p: SamplingParams) -> bool:
    """Whether a request's penalties, DRY, no_repeat_ngram_size, sequence_bias (a sequence of
    two tokens or more), min_tokens or begin_suppress_tokens (its generated count) read its
    output history."""
    return (_has_penalties(p) or p.min_tokens > 0 or p.no_repeat_ngram_size > 0
            or p.dry_multiplier > 0
            or any(len(ids) > 1 for ids, _ in p.sequence_bias or ())
            or bool(p.begin_suppress_tokens))


def _has_edits(p: SamplingParams) -> bool:
    return (reads_history(p) or bool(p.logit_bias) or bool(p.sequence_bias)
            or p.allowed_token_ids is not None
            or bool(p.banned_token_ids) or p.structured_output is not None)


class SamplingBatch:
    """The per-row state of a batch of requests on one device: everything the fused kernels
    read for it, built once and updated in place (as vLLM's SamplingMetadata is for its
    sampler). `fastsample.sample(logits, batch=b)` samples it; `fastsample.Sampler` keeps one.

    Holds, one row per request, on `device`:
      - the per-row parameters of the table (docs/parameters.md), each a [B] tensor attribute:
        temperature float32, top_k int64, top_p float64, min_p float32, top_n_sigma float32,
        typical_p float64, epsilon_cutoff float32, eta_cutoff float32,
        xtc_threshold float32, xtc_probability float32,
        repetition_penalty / frequency_penalty / presence_penalty float32,
        dry_multiplier / dry_base float32, dry_allowed_length / dry_penalty_last_n int64,
        no_repeat_ngram_size int64, min_tokens int64,
        num_generated int64 (tokens generated so far, kept while the batch keeps histories),
        mirostat_mu float32 (each mirostat row's target surprise, moved by advance(); its
        step's truncation is written into epsilon_cutoff / top_k: docs/decode_loop.md);
      - the random state: seed int64 (unseeded requests get one drawn from `generator` when
        they join, so a request keeps its stream) and offset int64 (each row's position in
        that stream: the number of tokens it has generated);
      - the histories and masks: the prompt and output ids (the output only while some row
        reads it: penalties, DRY, no_repeat_ngram_size, sequence_bias, min_tokens), logit_bias,
        sequence_bias (packed: edit_arguments.pack_sequences), DRY's sequence breakers
        (edit_arguments.pack_breakers), allowed and banned ids, and the
        stop ids (EOS unless ignore_eos, and stop_token_ids) that min_tokens masks;
      - the logprobs plan: `logprobs` (the most any row asks for; None: off) and
        `logprobs_mode` (one per batch);
      - `flags` (BatchFlags): what a call can skip; and max_tokens int64 [B] (-1: no limit),
        for the caller's finish checks.
    `params` holds each row's resolved SamplingParams (distributions drawn once, from the
    row's seed, which it carries); `source` the params as given. What ends a request
    (max_tokens, EOS, stop ids and strings, a grammar that ended: `grammar_terminated()`) is
    the decode loop's to check (fastsample.Sampler does). A row that sets prompt_logprobs is
    rejected: no call on a batch computes it.

    Rows with a `structured_output` (guided JSON, regex, choice, grammar) are constrained by a
    grammar matcher each (fastsample.grammar, xgrammar): every call fills their next-token
    bitmask, applied as stage 1's token_bitmask, and `advance` feeds them the step's tokens.
    They need the batch's `tokenizer` and `vocab_size`.

    One call at a time: a call points the batch's kernel arguments at its logits and outputs.
    advance() checks the history's room on the host, so a step that records histories is not
    replayable as a captured CUDA graph (sampling alone is).

    Rows change between steps, on the device: `append` adds requests at the end, `keep`
    keeps and reorders rows, `remove` drops rows. `advance(tokens)` records a step: each row
    moves one number on in its random stream and, while histories are kept, its token is
    appended to its output.

    A decode loop over fixed requests::

        batch = fastsample.SamplingBatch(params, device="cuda", prompt_token_ids=prompts)
        for _ in range(steps):
            tokens = fastsample.sample(model(...).logits[:, -1], batch=batch)
            batch.advance(tokens)

    Args:
        params: SamplingParams, one per row.
        device: where the rows live (the logits' device).
        generator: draws the seeds of requests without one (default: torch's default).
        prompt_token_ids: one list of ids per row (or None), for the repetition penalty.
        eos_token_ids: EOS ids for rows whose params have none (min_tokens masks them; a
            grammar may end on them).
        tokenizer, vocab_size: the model's transformers tokenizer and V of its logits, for
            rows with a structured_output.
    """

    def __init__(self, params: Sequence[SamplingParams] = (), device: Any = "cpu",
                 generator: Optional[torch.Generator] = None, *,
                 prompt_token_ids: Optional[Sequence[Sequence[int]]] = None,
                 eos_token_ids: Sequence[int] = (), tokenizer: Any = None,
                 vocab_size: Optional[int] = None):
        arguments.check_generator(generator)
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._grammar: Optional[GrammarRows] = None  # made when a constrained row joins
        self.device = arguments.canonical_device(device)
        self._generator = generator
        self._eos = arguments.token_ids("eos_token_ids", eos_token_ids)
        self.source: Tuple[SamplingParams, ...] = ()
        self.params: Tuple[SamplingParams, ...] = ()
        self._rows: Dict[str, torch.Tensor] = _empty_rows(self.device)
        self._steps = 0             # advance() calls so far
        self._base: List[int] = []  # per row: output tokens at join minus the steps before it
        self._row_max: List[int] = []  # per row: the largest id it lists (-1: none)
        self._cap = 0               # width of the device output history
        self.tracks_history = False
        self._prepared = None       # the kernel arguments over the row tensors
        self._refresh()
        self.append(params, prompt_token_ids=prompt_token_ids)

    # -- rows ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.params)

    def append(self, params: Sequence[SamplingParams], *,
               prompt_token_ids: Optional[Sequence[Sequence[int]]] = None,
               output_token_ids: Optional[Sequence[Sequence[int]]] = None) -> None:
        """Adds one row per SamplingParams at the end. prompt_token_ids / output_token_ids: one
        list of ids per new row (None: none); the output ids are tokens a request generated
        before it joined (its offset and num_generated start there). Raises TypeError or
        ValueError naming the row; nothing changes then."""
        params = tuple(params)
        for i, p in enumerate(params):
            check_params(f"params[{i}]", p)
            why = decoding.per_step_refusal(p, "SamplingBatch")
            if why:
                raise ValueError(f"params[{i}]: {why}")
            if p.prompt_logprobs is not None:
                raise ValueError(f"params[{i}].prompt_logprobs={p.prompt_logprobs!r}: a "
                                 f"SamplingBatch does not run it (no call on a batch computes "
                                 f"it); score the prompt with fastsample.prompt_logprobs")
        specs = [grammar_spec(p.structured_output) for p in params]
        matchers = self._grammar_matchers(params, specs)
        prompts = _per_row("prompt_token_ids", prompt_token_ids, len(params))
        outputs = _per_row("output_token_ids", output_token_ids, len(params))
        # One draw per unseeded row (none when every row has a seed: the generator's state, or
        # torch's, moves only for requests that need it).
        unseeded = sum(p.seed is None for p in params)
        drawn = iter(arguments.draw_seeds(torch.empty(unseeded, dtype=torch.int64),
                                          self._generator).tolist() if unseeded else ())
        rows = []
        for p in params:
            seed = next(drawn) if p.seed is None else p.seed
            rows.append(replace(p.resolve(seed), seed=seed))
        modes = {mirostat.logprobs_mode(p) for p in self.params + tuple(rows)} - {None}
        if len(modes) > 1:
            raise ValueError("requests in one batch must share logprobs_mode (a mirostat row "
                             "reads processed logprobs); got "
                             + ", ".join(f"row {i}: {mirostat.logprobs_mode(p)}"
                                         for i, p in enumerate(self.params + tuple(rows))
                                         if mirostat.logprobs_mode(p) is not None))
        if not rows:
            return
        start = not self.tracks_history and any(reads_history(p) for p in rows)
        if start:
            unknown = [i for i, b in enumerate(self._base) if b + self._steps > 0]
            if unknown:
                raise ValueError(f"rows {unknown[:10]} generated tokens before any row read its "
                                 f"history, so the batch did not record them: call "
                                 f"start_history(outputs) with every row's output ids first")
        new = self._new_rows(rows, prompts, outputs, self.tracks_history or start)
        if start:
            self._start_history([[] for _ in self.params])
        self._rows = {k: _cat_rows(self._rows[k], new[k]) for k in self._rows}
        self._cap = self._rows["output"].shape[1]
        self.source += params
        self.params += tuple(rows)
        if self._grammar is not None:
            self._grammar.append(matchers)
        self._base += [len(o) - self._steps for o in outputs]
        self._row_max += [max((t for ids in (prompt, output, [b for b, _ in p.logit_bias or ()],
                                             [t for s, _ in p.sequence_bias or () for t in s],
                                             p.allowed_token_ids or (), p.banned_token_ids or (),
                                             p.stop_token_ids, self._eos_of(p),
                                             p.begin_suppress_tokens or (),
                                             [t for b in p.dry_sequence_breakers or ()
                                              for t in b]) for t in ids),
                              default=-1) for p, prompt, output in zip(rows, prompts, outputs)]
        self._refresh()

    def keep(self, rows: Sequence[int]) -> None:
        """Keeps the given rows, in the given order (a remove, a reorder, or both), on the
        device. rows: distinct ints in [0, len(self))."""
        order = self._row_indices(rows)
        if len(set(order)) != len(order):
            raise ValueError(f"rows {order} name a row twice: each row is one request's stream "
                             f"(beam search copies rows with fork)")
        if order != list(range(len(self))):
            self._take(order)

    def fork(self, rows: Sequence[int]) -> None:
        """Takes the given rows, in the given order, repeats allowed: a row taken twice goes on
        as two rows with the same parameters, seed, offset and history so far (beam search's
        reorder: each beam continues a parent). Rows with a structured_output cannot repeat
        (a grammar matcher cannot be copied)."""
        order = self._row_indices(rows)
        copied = [r for r, c in Counter(order).items()
                  if c > 1 and self.params[r].structured_output is not None]
        if copied:
            raise ValueError(f"fork: rows {sorted(copied)} have a structured_output and cannot "
                             f"be copied (a grammar matcher cannot)")
        self._take(order)

    def _take(self, order: List[int]) -> None:
        index = torch.tensor(order, dtype=torch.int64, device=self.device)
        self._rows = {k: v.index_select(0, index) for k, v in self._rows.items()}
        self.source = tuple(self.source[r] for r in order)
        self.params = tuple(self.params[r] for r in order)
        self._base = [self._base[r] for r in order]
        self._row_max = [self._row_max[r] for r in order]
        if self._grammar is not None:
            self._grammar.keep(order)
        self._refresh()

    def remove(self, rows: Sequence[int]) -> None:
        """Drops the given rows (ints in [0, len(self))); the others keep their order."""
        gone = set(self._row_indices(rows))
        self.keep([r for r in range(len(self)) if r not in gone])

    def _row_indices(self, rows: Sequence[int]) -> List[int]:
        for i, r in enumerate(rows):
            if not arguments.is_int(r) or not 0 <= r < len(self):
                raise ValueError(f"rows[{i}]={r!r} is not a row of this batch (0 <= row < "
                                 f"{len(self)})")
        return [int(r) for r in rows]

    def update(self, params: Sequence[SamplingParams],
               generator: Optional[torch.Generator] = None) -> "SamplingBatch":
        """This batch if `params` are the same requests in the same order, else a new one."""
        if len(params) == len(self.source) and all(a is b for a, b in zip(params, self.source)):
            return self
        return SamplingBatch(params, self.device, generator, eos_token_ids=self._eos,
                             tokenizer=self._tokenizer, vocab_size=self._vocab_size)

    # -- steps --------------------------------------------------------------------------
    def advance(self, tokens: Optional[torch.Tensor] = None,
                logprobs: Optional[torch.Tensor] = None) -> None:
        """Records a step: every row moves one number on in its random stream (offset += 1,
        on the device) and, while the batch keeps histories (`tracks_history`: some row has
        penalties or min_tokens), appends its token from `tokens` (int64 [B] on the device,
        what sample returned) to its output; mirostat rows move their mu by their token's
        processed logprob in `logprobs` (float32 [B], what sample returned as
        SampleOutput.logprobs). Call it once per step, or the next step repeats this one's
        draw."""
        plan = self._mirostat
        if plan is not None and (not isinstance(logprobs, torch.Tensor)
                                 or logprobs.shape != (len(self),)
                                 or logprobs.device != self.device):
            raise ValueError(f"advance(tokens, logprobs): mirostat rows move their mu by the "
                             f"drawn tokens' logprobs: pass the step's SampleOutput.logprobs "
                             f"(a float32 tensor [{len(self)}] on {self.device}), got "
                             f"{_describe(logprobs)}")
        if self.tracks_history:
            if not isinstance(tokens, torch.Tensor) or tokens.shape != (len(self),) or \
                    tokens.dtype != torch.int64 or tokens.device != self.device:
                raise ValueError(f"advance(tokens): rows read their history, so this step's "
                                 f"tokens are needed: an int64 tensor [{len(self)}] on "
                                 f"{self.device}, got {_describe(tokens)}")
            self._ensure_capacity()
            r = self._rows
            r["output"].scatter_(1, r["num_generated"][:, None], tokens[:, None])
            r["num_generated"] += 1
        if self._grammar is not None and self._grammar.any:
            if not isinstance(tokens, torch.Tensor) or tokens.shape != (len(self),):
                raise ValueError(f"advance(tokens): rows follow a grammar, so this step's "
                                 f"tokens are needed: a tensor [{len(self)}], got "
                                 f"{_describe(tokens)}")
            self._grammar.accept(tokens.tolist())
        if plan is not None:
            mu = self._rows["mirostat_mu"]
            mu[plan.rows] = mirostat.update_mu(mu[plan.rows], logprobs[plan.rows], plan.tau,
                                               plan.eta)
        self._rows["offset"] += 1
        self._steps += 1

    def check_verifiable(self) -> None:
        """Raises ValueError unless every row can verify drafts (fastsample.verify, Sampler.
        verify): a mirostat row's mu moves token by token, a grammar row's mask follows its
        matcher, and neither has one value per draft node."""
        rows = [i for i, p in enumerate(self.params) if p.mirostat]
        if rows:
            raise ValueError(f"rows {rows} use mirostat, whose mu moves with every token: "
                             f"speculative verification cannot run them")
        if self._grammar is not None and self._grammar.any:
            raise ValueError("rows follow a grammar (structured_output): verify them with "
                             "fastsample.verify(..., token_bitmask=[B, S + 1, W]), one mask per "
                             "draft node from a matcher advanced along the drafts")

    def advance_verified(self, tokens: torch.Tensor, emitted: Sequence[int]) -> None:
        """Records a verification step (fastsample.verify): row i emitted tokens[i, :emitted[i]]
        (int64 [B, S + 1] on the device); its random stream moves on by that many numbers and,
        while the batch keeps histories, its output takes them."""
        self.check_verifiable()
        emitted = list(emitted)
        if len(emitted) != len(self) or not all(arguments.is_int(n) and n >= 1 for n in emitted):
            raise ValueError(f"advance_verified: one count >= 1 per row ({len(self)}), got "
                             f"{emitted}")
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or \
                tokens.shape[0] != len(self) or tokens.shape[1] < max(emitted, default=0) or \
                tokens.dtype != torch.int64 or tokens.device != self.device:
            raise ValueError(f"advance_verified(tokens, emitted): tokens must be an int64 tensor "
                             f"[{len(self)}, W >= {max(emitted, default=0)}] on {self.device}, "
                             f"got {_describe(tokens)}")
        counts = torch.tensor(emitted, dtype=torch.int64, device=self.device)
        if self.tracks_history:
            width = tokens.shape[1]
            self._ensure_capacity(width)
            r = self._rows
            positions = torch.arange(width, device=self.device)[None]
            index = r["num_generated"][:, None] + positions
            r["output"].scatter_(1, index, torch.where(positions < counts[:, None], tokens, -1))
            r["num_generated"] += counts
        self._rows["offset"] += counts
        # Histories are as long as the steps (advance) plus each row's base: the rows that
        # emitted more than one token have a longer base.
        self._base = [b + n - 1 for b, n in zip(self._base, emitted)]
        self._steps += 1

    def check_grammar(self, params: SamplingParams) -> None:
        """Raises ValueError / TypeError (or ImportError without xgrammar) unless the request's
        structured_output reads and compiles for this batch's tokenizer; the compiled grammar
        is cached for when the request joins."""
        self._grammar_matchers([params], [grammar_spec(params.structured_output)])

    def grammar_terminated(self) -> List[bool]:
        """Per row: whether its grammar has ended (its request is complete); False for rows
        without a structured_output."""
        if self._grammar is None:
            return [False] * len(self)
        return self._grammar.terminated()

    def _grammar_matchers(self, params: Sequence[SamplingParams],
                          specs: Sequence[Any]) -> List[Any]:
        """Matchers for joining rows (compiled before anything changes)."""
        if all(spec is None for spec in specs):
            return [None] * len(specs)
        if self._tokenizer is None or self._vocab_size is None:
            i = next(i for i, spec in enumerate(specs) if spec is not None)
            raise ValueError(f"params[{i}].structured_output needs the model's tokenizer and "
                             f"V: SamplingBatch(..., tokenizer=..., vocab_size=...) (a Sampler "
                             f"passes its own)")
        if self._grammar is None:
            self._grammar = GrammarRows(self._tokenizer, self._vocab_size)
            self._grammar.append([None] * len(self))
        return self._grammar.matchers(specs, [self._eos_of(p) for p in params])

    def start_history(self, outputs: Sequence[Sequence[int]]) -> None:
        """Starts keeping each row's output history on the device from `outputs` (one list of
        ids per row: the tokens generated so far). A batch does so by itself from the moment a
        row reads its history; a row that joins later, after steps without one, needs the
        others' outputs first."""
        outputs = _per_row("outputs", outputs, len(self))
        self._start_history(outputs)
        self._base = [len(o) - self._steps for o in outputs]
        self._refresh()

    def stop_history(self) -> None:
        """Stops keeping output histories and frees them (for when no row reads them any
        more); a row that reads them later needs start_history(outputs) first."""
        if any(reads_history(p) for p in self.params):
            raise ValueError("stop_history(): rows with penalties or min_tokens read their "
                             "history; remove them first")
        self._rows["output"] = torch.empty((len(self), 0), dtype=torch.int64, device=self.device)
        self._cap = 0
        self.tracks_history = False
        self._prepared = None

    def _start_history(self, outputs: List[List[int]]) -> None:
        self._rows["output"] = _padded(outputs, -1, torch.int64).to(self.device)
        self._rows["num_generated"] = torch.tensor([len(o) for o in outputs], dtype=torch.int64,
                                                   device=self.device)
        self._cap = self._rows["output"].shape[1]
        self.tracks_history = True
        self._prepared = None

    def _ensure_capacity(self, tokens: int = 1) -> None:
        """Room in the device history for this step's tokens (one per row, or up to `tokens`)."""
        longest = self._steps + max(self._base, default=0)
        if longest + tokens <= self._cap:
            return
        new_cap = max(16, 2 * self._cap, longest + tokens)
        self._rows["output"] = F.pad(self._rows["output"], (0, new_cap - self._cap), value=-1)
        self._cap = new_cap
        self._prepared = None

    # -- what a call reads --------------------------------------------------------------
    def check_logits(self, logits: torch.Tensor) -> None:
        """Raises ValueError unless logits are [len(self), V] on this batch's device, with V
        above every id the rows list."""
        if logits.dim() != 2 or logits.shape[0] != len(self):
            raise ValueError(f"logits must have shape [{len(self)}, V] (one row per row of the "
                             f"batch, in order), got {tuple(logits.shape)}")
        if logits.device != self.device:
            raise ValueError(f"logits are on {logits.device}, the batch's rows on {self.device}")
        vocab = logits.shape[1]
        if self._max_id >= vocab:
            raise ValueError(f"the batch lists token id {self._max_id} (prompt, logit_bias, "
                             f"allowed, banned, stop or EOS ids), out of range for V={vocab}")

    def kernel_args(self, logits: torch.Tensor) -> Tuple[Any, Optional[Any]]:
        """(_C.BatchArgs, _C.EditArgs or None) of a call over `logits` with this batch's rows:
        built once, pointing into the row tensors (updated in place), and pointed at each
        call's logits. Valid until the rows change."""
        if self._prepared is None:
            P = arguments.Param
            r = self._rows
            edits = None
            if self.flags.any_edits:
                edits = edit_arguments.Edits(
                    output_counts=None, bias_values=r["bias_values"],
                    sequence_values=r["sequence_values"], bitmask=None,
                    **{name: edit_arguments.IdRows(r[name]) for name in edit_arguments.ID_LISTS},
                    **{name: P(0, r[name]) for name in EDITS})
            args = launch.batch_args(logits, [(name, P(0, r[name])) for name in FILTERS])
            # The Edits object keeps the tensors its kernel arguments point into alive.
            self._prepared = (args, edits, None if edits is None else edits.kernel_args())
        args, _, edit_args = self._prepared
        launch.set_logits(args, logits)
        if self._grammar is not None and self._grammar.any:
            mask = self._grammar.bitmask(self.device)  # filled for this step
            edit_args.bitmask = mask.data_ptr()
            edit_args.bitmask_stride = mask.stride(0)
        # Mirostat's truncation for this step (v1 reads the step's processed logits first).
        self.truncate_mirostat(lambda: launch.run_process(logits, args, edit_args))
        return args, edit_args

    def truncate_mirostat(self, processed: Any) -> None:
        """Writes this step's mirostat truncation into the rows' filters, from each row's mu:
        v2 rows' epsilon_cutoff (2^-mu), v1 rows' top_k (from `processed()`, the step's [B, V]
        processed logits with their top_k off). Nothing without mirostat rows."""
        plan = self._mirostat
        if plan is None:
            return
        r = self._rows
        if plan.v2.numel():
            r["epsilon_cutoff"][plan.v2] = mirostat.v2_epsilon(r["mirostat_mu"][plan.v2])
        if plan.v1.numel():
            r["top_k"][plan.v1] = 0
            z = processed()
            r["top_k"][plan.v1] = mirostat.v1_top_k(z[plan.v1], r["mirostat_mu"][plan.v1],
                                                    z.shape[1])

    def logprob_outputs(self) -> Optional[launch.LogprobOutputs]:
        """Fresh stage 7 outputs for one call, or None when no row asks for logprobs."""
        if self.logprobs is None:
            return None
        return launch.LogprobOutputs(self.logprobs, self.logprobs_mode == "processed",
                                     len(self), self.device)

    def kwargs(self, draw: bool = True, logits: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """The batch as fastsample.sample's keywords, one value per row (what runs on a device
        without compiled kernels); draw=False: process_logits' (no logprobs; seed and offset
        key XTC's coin there). With mirostat rows, `logits` (the step's) is needed: their
        truncation for this step (docs/decode_loop.md) is written into the rows first."""
        if self._mirostat is not None:
            if logits is None:
                raise ValueError("kwargs(): mirostat rows truncate by the step's logits: pass "
                                 "kwargs(logits=...) for the step the keywords are for")
            from .. import reference
            self.truncate_mirostat(
                lambda: reference.process_logits(logits, **self._keywords(draw=False)))
        return self._keywords(draw)

    def _keywords(self, draw: bool) -> Dict[str, Any]:
        r = self._rows
        out: Dict[str, Any] = {name: r[name] for name in FILTERS}
        out.update({name: r[name] for name in EDITS if name != "num_generated"})
        out.update(prompt_token_ids=r["prompt"], logit_bias=[dict(p.logit_bias or {})
                                                             for p in self.params],
                   sequence_bias=[dict(p.sequence_bias or {}) for p in self.params],
                   allowed_token_ids=r["allowed"], banned_token_ids=r["banned"],
                   stop_token_ids=r["stop"], begin_suppress_tokens=r["begin_suppress"],
                   dry_sequence_breakers=[list(p.dry_sequence_breakers or ())
                                          for p in self.params])
        if self.tracks_history:
            out.update(output_token_ids=r["output"], num_generated=r["num_generated"])
        if draw and self.logprobs is not None:
            out.update(logprobs=self.logprobs, logprobs_mode=self.logprobs_mode)
        if self._grammar is not None and self._grammar.any:
            out.update(token_bitmask=self._grammar.bitmask(self.device))
        return out

    def filter_kwargs(self) -> Dict[str, torch.Tensor]:
        """The per-row tensors of the filters and the random state (temperature, top_k, top_p,
        min_p, top_n_sigma, typical_p, epsilon_cutoff, eta_cutoff, xtc_threshold,
        xtc_probability, seed and offset), keywords of
        fastsample.sample and process_logits. Raises ValueError when a
        row sets a field these cannot carry (penalties, logit_bias, allowed/banned ids, stop
        ids, min_tokens, logprobs: they need the row's history or outputs), naming the rows:
        `sample(logits, batch=...)` or a fastsample.Sampler runs such requests."""
        unsupported = {}
        for i, p in enumerate(self.params):
            fields = [name for name, on in (
                ("repetition_penalty", p.repetition_penalty != 1.0),
                ("presence_penalty", p.presence_penalty != 0.0),
                ("frequency_penalty", p.frequency_penalty != 0.0),
                ("no_repeat_ngram_size", p.no_repeat_ngram_size > 0),
                ("dry_multiplier", p.dry_multiplier > 0),
                ("mirostat", p.mirostat != 0),
                ("logit_bias", bool(p.logit_bias)),
                ("sequence_bias", bool(p.sequence_bias)),
                ("allowed_token_ids", p.allowed_token_ids is not None),
                ("banned_token_ids", bool(p.banned_token_ids)),
                ("stop_token_ids", bool(p.stop_token_ids)),
                ("min_tokens", p.min_tokens > 0),
                ("begin_suppress_tokens", bool(p.begin_suppress_tokens)),
                ("logprobs", p.logprobs is not None),
                ("structured_output", p.structured_output is not None)) if on]
            if fields:
                unsupported[i] = fields
        if unsupported:
            raise ValueError(f"SamplingBatch.filter_kwargs() carries the filters and the seeds "
                             f"only; rows {unsupported} set more: pass the batch itself, "
                             f"fastsample.sample(logits, batch=...), or run these requests "
                             f"with a fastsample.Sampler")
        return {name: self._rows[name] for name in FILTERS}

    def _new_rows(self, rows: Sequence[SamplingParams], prompts: List[List[int]],
                  outputs: List[List[int]], history: bool) -> Dict[str, torch.Tensor]:
        values: Dict[str, list] = {"offset": [len(o) for o in outputs],
                                   "num_generated": [len(o) for o in outputs]}
        for p in TABLE:
            if p.name not in values:
                cast = int if p.range.integer else float
                values[p.name] = [cast(getattr(r, p.name)) for r in rows]
        out = {p.name: torch.tensor(values[p.name], dtype=p.dtype) for p in TABLE}
        lists = {
            "prompt": prompts,
            "output": outputs if history else [[] for _ in rows],
            "bias": [[t for t, _ in r.logit_bias or ()] for r in rows],
            "allowed": [list(r.allowed_token_ids or ()) for r in rows],
            "banned": [list(r.banned_token_ids or ()) for r in rows],
            "stop": [list(() if r.ignore_eos else self._eos_of(r)) + list(r.stop_token_ids)
                     for r in rows],
            "begin_suppress": [list(r.begin_suppress_tokens or ()) for r in rows],
            "dry_breakers": [edit_arguments.pack_breakers(r.dry_sequence_breakers) for r in rows],
        }
        for name, ids in lists.items():
            out[name] = _padded(ids, -1, torch.int64)
        out["bias_values"] = _padded([[b for _, b in r.logit_bias or ()] for r in rows], 0.0,
                                     torch.float32)
        sequences = [edit_arguments.pack_sequences(r.sequence_bias) for r in rows]
        out["sequences"] = _padded([ids for ids, _ in sequences], -1, torch.int64)
        out["sequence_values"] = _padded([values for _, values in sequences], 0.0,
                                         torch.float32)
        out["max_tokens"] = torch.tensor([-1 if r.max_tokens is None else r.max_tokens
                                          for r in rows], dtype=torch.int64)
        out["mirostat_mu"] = torch.tensor([2.0 * r.mirostat_tau for r in rows],
                                          dtype=torch.float32)
        return {k: v.to(self.device) for k, v in out.items()}

    def _eos_of(self, p: SamplingParams) -> Tuple[int, ...]:
        return self._eos if p.eos_token_ids is None else tuple(p.eos_token_ids)

    def _refresh(self) -> None:
        """What follows from the rows: flags, the logprobs plan, the largest listed id."""
        rows = self.params
        self.flags = BatchFlags.of(rows)
        # Mirostat rows read their tokens' processed logprobs.
        asking = [p for p in rows if mirostat.logprobs_mode(p) is not None]
        self.logprobs: Optional[int] = max(p.logprobs or 0 for p in asking) if asking else None
        self.logprobs_mode: str = mirostat.logprobs_mode(asking[0]) if asking else "raw"
        self._mirostat = mirostat.Plan.of(rows, self.device)
        self._max_id = max(self._row_max, default=-1)
        self._prepared = None

    def __repr__(self) -> str:
        return f"SamplingBatch(rows={len(self)}, device={self.device}, flags={self.flags})"


def _row_tensor(name: str):
    return property(lambda self: self._rows[name],
                    doc=f"{name}: one value per row, on the batch's device")


for _name in [p.name for p in TABLE] + ["max_tokens", "mirostat_mu"]:
    setattr(SamplingBatch, _name, _row_tensor(_name))


def _empty_rows(device: torch.device) -> Dict[str, torch.Tensor]:
    rows = {p.name: torch.empty(0, dtype=p.dtype, device=device) for p in TABLE}
    for name in edit_arguments.ID_LISTS:
        rows[name] = torch.empty((0, 0), dtype=torch.int64, device=device)
    rows["bias_values"] = torch.empty((0, 0), dtype=torch.float32, device=device)
    rows["sequence_values"] = torch.empty((0, 0), dtype=torch.float32, device=device)
    rows["max_tokens"] = torch.empty(0, dtype=torch.int64, device=device)
    rows["mirostat_mu"] = torch.empty(0, dtype=torch.float32, device=device)
    return rows


def _per_row(name: str, lists: Any, rows: int) -> List[List[int]]:
    if lists is None:
        return [[] for _ in range(rows)]
    if isinstance(lists, (str, bytes)) or not hasattr(lists, "__len__") or len(lists) != rows:
        raise ValueError(f"{name}: expected one list of ids per row ({rows}), got "
                         f"{_describe(lists)}")
    return [list(arguments.token_ids(f"{name}[{i}]", () if ids is None else ids))
            for i, ids in enumerate(lists)]


def _describe(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"a {v.dtype} tensor of shape {tuple(v.shape)} on {v.device}"
    return f"{type(v).__name__} {v!r}"[:200]


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
