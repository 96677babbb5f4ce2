"""GrammarRows: the grammar matchers of a batch's rows (xgrammar), the next-token bitmask they
fill for a step and the tokens they accept."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, List, Optional, Sequence

import torch

from .spec import GrammarSpec

INSTALL = "pip install 'fastsample[structured]' (xgrammar)"


def _xgrammar():
    try:
        import xgrammar
    except ImportError as e:
        raise ImportError(f"structured_output needs xgrammar: {INSTALL} ({e})") from None
    return xgrammar


def _bit(j: int) -> int:
    """Bit j of an int32 word, as the signed value torch stores."""
    return (1 << j) - (1 << 32) if j == 31 else 1 << j


class GrammarRows:
    """One grammar matcher per row of a batch (None for an unconstrained row).

    `bitmask(device)` gives the constrained rows' next-token masks, filled in one parallel call
    (xgrammar's batch fill) into an int32 [B, ceil(V/32)] tensor, bit j of word w allowing token
    32w + j: the layout of the kernels' `token_bitmask`; unconstrained rows are all ones.
    `accept(tokens)` advances every constrained row by its sampled token and starts filling the
    next masks on a worker thread, so the fill overlaps the model's next forward pass. A
    grammar is compiled once per distinct source (the compiler caches it), so requests sharing
    a schema share it.
    A matcher stops at the row's EOS ids: the grammar allows EOS exactly where it may end, and
    accepting it terminates the row; a row without EOS ids terminates when its grammar
    completes. A terminated row's mask allows its EOS ids alone (none without them), for a
    loop that keeps it a step longer.

    Args:
        tokenizer: the transformers tokenizer of the model.
        vocab_size: V of the logits (at least the tokenizer's size; ids above it are masked).
    """

    def __init__(self, tokenizer: Any, vocab_size: int):
        xgr = _xgrammar()
        self._xgr = xgr
        self.vocab_size = int(vocab_size)
        self._info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size)
        self._compiler = xgr.GrammarCompiler(self._info)
        self._batch_fill = xgr.BatchGrammarMatcher()
        self._rows: List[Any] = []
        self._stops: List[List[int]] = []  # per row: its matcher's stop ids
        self._host: Optional[torch.Tensor] = None    # the filled mask, [B, W] int32 on the CPU
        self._device: Optional[torch.Tensor] = None  # its copy on a CUDA device
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastsample-grammar")
        self._ahead: Optional[Future] = None  # a fill started by `accept`

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def any(self) -> bool:
        """Whether some row is constrained."""
        return any(m is not None for m in self._rows)

    def matchers(self, specs: Sequence[Optional[GrammarSpec]],
                 stop_ids: Sequence[Sequence[int]]) -> List[Any]:
        """(matcher, stop ids) for rows about to join (None where a spec is None), compiled
        here; nothing changes until `append`. Raises ValueError naming the row when a grammar
        does not compile."""
        out: List[Any] = []
        for i, (spec, stops) in enumerate(zip(specs, stop_ids)):
            if spec is None:
                out.append(None)
                continue
            try:
                compiled = self._compile(spec)
            except Exception as e:  # xgrammar raises RuntimeError / its own errors
                raise ValueError(f"params[{i}].structured_output: the {spec.kind} does not "
                                 f"compile: {e}") from None
            stops = [int(t) for t in stops]
            out.append((self._xgr.GrammarMatcher(compiled, override_stop_tokens=stops or None,
                                                 terminate_without_stop_token=not stops),
                        stops))
        return out

    def _compile(self, spec: GrammarSpec):
        if spec.kind in ("json_schema", "json_object"):
            # No free whitespace between JSON tokens: a model cannot loop on spaces (vLLM's
            # --disable-any-whitespace).
            return self._compiler.compile_json_schema(spec.source, any_whitespace=False)
        if spec.kind == "regex":
            return self._compiler.compile_regex(spec.source)
        return self._compiler.compile_grammar(spec.source)  # "grammar", "choice"

    def append(self, matchers: Sequence[Any]) -> None:
        """Appends rows: entries of `matchers()`, or None for unconstrained rows."""
        self._settle()
        for entry in matchers:
            self._rows.append(None if entry is None else entry[0])
            self._stops.append([] if entry is None else entry[1])
        self._host = self._device = None

    def keep(self, order: Sequence[int]) -> None:
        self._settle()
        self._rows = [self._rows[r] for r in order]
        self._stops = [self._stops[r] for r in order]
        self._host = self._device = None

    def bitmask(self, device: torch.device) -> torch.Tensor:
        """The rows' next-token masks for this step, int32 [B, ceil(V/32)] on `device` (the
        fill `accept` started, or one now)."""
        host = self._ahead.result() if self._ahead is not None else self._fill()
        self._ahead = None
        if device.type == "cpu":
            return host
        if self._device is None or self._device.device != device:
            self._host = host = host.pin_memory()
            self._device = torch.empty_like(host, device=device)
        return self._device.copy_(host, non_blocking=True)

    def _fill(self) -> torch.Tensor:
        """Fills the host mask from the matchers' states."""
        if self._host is None:
            self._host = self._xgr.allocate_token_bitmask(len(self._rows), self.vocab_size)
        self._host.fill_(-1)
        rows = []
        for i, m in enumerate(self._rows):
            if m is not None and m.is_terminated():
                self._host[i] = 0
                for t in self._stops[i]:
                    self._host[i, t // 32] |= _bit(t % 32)
            elif m is not None:
                rows.append(i)
        if rows:
            self._batch_fill.batch_fill_next_token_bitmask(
                [self._rows[i] for i in rows], self._host, rows)
        return self._host

    def _settle(self) -> None:
        """Waits for a fill in flight (before the rows change under it)."""
        if self._ahead is not None:
            self._ahead.result()
            self._ahead = None

    def accept(self, tokens: Sequence[int]) -> None:
        """Advances each constrained row by its token. Raises RuntimeError if a matcher rejects
        one (the kernels never draw a masked token, so this is a bug, not bad input)."""
        for i, (m, t) in enumerate(zip(self._rows, tokens)):
            if m is not None and not m.is_terminated() and not m.accept_token(int(t)):
                raise RuntimeError(f"row {i}: the grammar rejected token {t}, which its mask "
                                   f"allowed")
        # The next step's masks, filled on a worker thread (in xgrammar's C++) while the
        # caller runs the model's forward pass; `bitmask` waits for it.
        self._ahead = self._worker.submit(self._fill)

    def terminated(self) -> List[bool]:
        """Per row: whether its grammar has ended (False for unconstrained rows)."""
        return [m is not None and m.is_terminated() for m in self._rows]
