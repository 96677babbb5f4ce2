"""A vLLM logits processor for the history edits vLLM lacks: DRY and no-repeat n-grams
(importable only where vllm is installed).

    vllm serve MODEL --logits-processors fastsample.integrations.vllm_history:HistoryEdits

Each request asks for the edits in `SamplingParams.extra_args` (`vllm_xargs` in vLLM's OpenAI
server) under fastsample's names, ranges and defaults (docs/parameters.md): dry_multiplier,
dry_base, dry_allowed_length, dry_penalty_last_n, dry_sequence_breakers (token-id sequences, or
a flat list of ids, each a one-token breaker) and no_repeat_ngram_size. vLLM validates them when
the request arrives (`validate_params`), so a bad value is that request's error.

The edits run over the request's prompt then output ids, in one fused `fastsample.process_logits`
call over the rows that asked for any, and change nothing else. vLLM runs logits processors
before its penalties, so here DRY comes before repetition / frequency / presence penalties
(fastsample's own chain applies it after them). Each step copies the rows' histories to the
device. It implements vLLM's V1
logits-processor interface (the V1 model runner; VLLM_USE_V2_MODEL_RUNNER=0). It is not an entry
point of `vllm.logits_processors`: vLLM would load it into every engine, and its V2 runner refuses
V1 processors.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

try:
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates
except ImportError as e:  # pragma: no cover - exercised only without vllm
    raise ImportError("fastsample.integrations.vllm_history needs vLLM: pip install vllm") from e

from ..functional.sampling import process_logits
from ..kernel.cuda import host_to_device
from ..requests.sampling_params import DRY_FIELDS, SamplingParams

EDIT_FIELDS = DRY_FIELDS + ("no_repeat_ngram_size",)


def requested_edits(extra_args: Optional[Dict[str, Any]]) -> Optional[SamplingParams]:
    """The request's edits as a validated fastsample SamplingParams (ValueError / TypeError
    naming the field otherwise), or None when it asks for none."""
    given = {k: v for k, v in (extra_args or {}).items() if k in EDIT_FIELDS}
    if not given:
        return None
    breakers = given.get("dry_sequence_breakers")
    if isinstance(breakers, (list, tuple)) and breakers and \
            all(isinstance(b, int) and not isinstance(b, bool) for b in breakers):
        given["dry_sequence_breakers"] = [[b] for b in breakers]
    params = SamplingParams(**given)
    if params.dry_multiplier == 0.0 and params.no_repeat_ngram_size == 0:
        return None
    return params


class _Row:
    __slots__ = ("params", "prompt", "output")

    def __init__(self, params: SamplingParams, prompt: Optional[List[int]], output: List[int]):
        self.params, self.prompt, self.output = params, prompt or [], output


class HistoryEdits(LogitsProcessor):
    """DRY and no-repeat n-gram bans for the requests that ask for them (module docstring)."""

    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        requested_edits(sampling_params.extra_args)

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool):
        self.rows: Dict[int, _Row] = {}
        self.device = torch.device(device)
        self.is_pin_memory = is_pin_memory
        self.index: Optional[torch.Tensor] = None  # the rows' indices on the device

    def is_argmax_invariant(self) -> bool:
        return False  # a ban or a penalty can move the argmax

    def update_state(self, batch_update: Optional[BatchUpdate]) -> None:
        def new_row(params: Any, prompt: Optional[List[int]], output: List[int]) -> Optional[_Row]:
            edits = requested_edits(params.extra_args)
            return None if edits is None else _Row(edits, prompt, output)

        if process_dict_updates(self.rows, batch_update, new_row) or self.index is None:
            self.index = host_to_device(torch.tensor(sorted(self.rows), dtype=torch.int64),
                                        self.device, pin=self.is_pin_memory)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        rows = [self.rows[i] for i in sorted(self.rows)]
        per_row = {f: [getattr(r.params, f) for r in rows] for f in EDIT_FIELDS}
        breakers = per_row.pop("dry_sequence_breakers")
        logits[self.index] = process_logits(
            logits[self.index], prompt_token_ids=[r.prompt for r in rows],
            output_token_ids=[list(r.output) for r in rows],
            dry_sequence_breakers=_breakers_per_row(breakers), **per_row).to(logits.dtype)
        return logits


def _breakers_per_row(breakers: List[Optional[Tuple[Tuple[int, ...], ...]]]) -> Any:
    if all(not b for b in breakers):
        return None
    return [list(map(list, b or ())) for b in breakers]
