"""vLLM worker sampler plugin (importable only where vllm is installed).

    pip install fastsample                        # beside vllm: its vllm.general_plugins entry point
    FASTSAMPLE_VLLM_SAMPLER=1 vllm serve MODEL    # opt in; unset or 0 leaves vLLM's sampler alone

`register()` is the `vllm.general_plugins` entry point (vLLM loads it in its front end, its engine
core and every worker before the model runner exists; `VLLM_PLUGINS` filters plugins by name). With
FASTSAMPLE_VLLM_SAMPLER=1 it puts `FastsampleSampler` in place of vLLM's V1 `Sampler`, and selects
the V1 model runner (VLLM_USE_V2_MODEL_RUNNER=0; a 1 there is refused, since the V2 runner builds
its own sampler, which this plugin does not replace).

`FastsampleSampler` is vLLM's Sampler with one step replaced: after vLLM's raw logprobs,
allowed-token mask, bad words, logits processors and penalties, the filter-and-draw
(temperature, min-p, top-k, top-p, the random draw) is one fused `fastsample.sample` call.
vLLM's logprobs contract is kept: raw modes are vLLM's own; processed modes return the logits
(or their log-softmax) after temperature and the filters, from `fastsample.process_logits`.
Greedy rows (temperature < 1e-5) are the argmax, lowest index on ties, as vLLM's greedy path.
A request's `seed` keeps its torch.Generator in vLLM's batch; each step draws one 63-bit Philox
seed from it, so a seeded request repeats whatever shares its batch.

Where the two differ: with min_p and top_p on one request, vLLM's sampler measures top-p over what
min-p keeps; fastsample measures it over the top-k survivors and intersects min-p's keep-set
(docs/semantics.md, stage 5). In a batch with argmax-invariant logits processors other than
vLLM's min-p one, temperature and those processors (min-p among them) run as in vLLM, then
fastsample's top-k, top-p and draw. Speculative decoding: only the bonus token's draw comes here;
vLLM's rejection sampler draws and accepts the drafts itself.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Tuple

import torch

try:
    from vllm.v1.sample import sampler as vllm_sampler
    from vllm.v1.sample.logits_processor.builtin import MinPLogitsProcessor
    from vllm.v1.sample.metadata import SamplingMetadata
except ImportError as e:  # pragma: no cover - exercised only without vllm
    raise ImportError("fastsample.integrations.vllm needs vLLM: pip install vllm") from e

from ..requests.arguments import draw_seeds
from .engine_draw import process_engine_rows, sample_engine_rows

OPT_IN = "FASTSAMPLE_VLLM_SAMPLER"
# vLLM's threshold below which a temperature means greedy (vllm/v1/sample/sampler.py).
GREEDY_BELOW = 1e-5
_PROCESSED_MODES = ("processed_logits", "processed_logprobs")
_VllmSampler = vllm_sampler.Sampler


class FastsampleSampler(_VllmSampler):
    """vLLM's V1 Sampler whose filter-and-draw is fastsample's fused call (module docstring)."""

    def sample(
        self,
        logits: torch.Tensor,
        sampling_metadata: SamplingMetadata,
        logprobs_mode_override: Optional[str] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Returns (int64 [B] tokens, processed logits or logprobs [B, V] in the processed
        logprobs modes when logprobs are asked for, else None): vLLM's Sampler.sample contract."""
        md = sampling_metadata
        if md.all_greedy:
            return super().sample(logits, md, logprobs_mode_override)
        greedy = md.temperature < GREEDY_BELOW
        invariant = md.logitsprocs.argmax_invariant
        if all(isinstance(p, MinPLogitsProcessor) for p in invariant):
            temperature, min_p = md.temperature, _min_p_rows(invariant)
        else:
            # Other argmax-invariant processors: temperature and every one of them (min-p first,
            # as vLLM lists its built-ins first) run as in vLLM, then fastsample's filters.
            logits = self.apply_temperature(logits, md.temperature, md.all_random)
            for processor in invariant:
                logits = processor.apply(logits)
            temperature, min_p = torch.ones_like(md.temperature), None
        filters = dict(top_k=0 if md.top_k is None else md.top_k,
                       top_p=1.0 if md.top_p is None else md.top_p,
                       min_p=0.0 if min_p is None else min_p)
        tokens = sample_engine_rows(
            logits, temperature=torch.where(greedy, 0.0, temperature),
            seed=_row_seeds(md.generators, logits), **filters)
        mode = logprobs_mode_override or self.logprobs_mode
        if mode not in _PROCESSED_MODES or (md.max_num_logprobs is None
                                            and not md.logprob_token_ids):
            return tokens, None
        # vLLM's processed logits of a greedy row in a mixed batch: T = 1, no filter.
        processed = process_engine_rows(
            logits, temperature=torch.where(greedy, 1.0, temperature), **filters)
        if mode == "processed_logprobs":
            processed = processed.log_softmax(dim=-1)
        return tokens, processed


def _min_p_rows(processors: Any) -> Optional[torch.Tensor]:
    """vLLM's min-p processor's per-row values [B], or None when no row uses min-p."""
    for processor in processors:
        if processor.min_p_count:
            return processor.min_p.view(-1)
    return None


def _row_seeds(generators: Dict[int, torch.Generator], logits: torch.Tensor) -> Optional[torch.Tensor]:
    """int64 [B] on the logits' device: one seed drawn from each seeded row's generator, -1
    (fastsample draws a fresh seed) elsewhere; None when no row is seeded."""
    if not generators:
        return None
    seeds = torch.full((logits.shape[0],), -1, dtype=torch.int64, device=logits.device)
    for row, generator in generators.items():
        drawn = torch.empty(1, dtype=torch.int64, device=generator.device)
        seeds[row] = draw_seeds(drawn, generator).to(logits.device)[0]
    return seeds


def _opted_in() -> bool:
    value = os.environ.get(OPT_IN, "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"{OPT_IN}={value!r}: allowed values are 1 (use fastsample's sampler) "
                         f"and 0 or unset (vLLM's own)")
    return value == "1"


def register() -> None:
    """The `vllm.general_plugins` entry point: with FASTSAMPLE_VLLM_SAMPLER=1, vLLM's V1
    model runner builds FastsampleSampler instead of its Sampler."""
    if not _opted_in():
        return
    runner = os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "").strip().lower()
    if runner in ("1", "true"):
        raise ValueError(f"{OPT_IN}=1 replaces the V1 model runner's sampler, and "
                         f"VLLM_USE_V2_MODEL_RUNNER={runner} selects the V2 runner: unset one")
    os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
    vllm_sampler.Sampler = FastsampleSampler
    # The runner module binds the name at import: rebind it where already imported.
    runner_module = sys.modules.get("vllm.v1.worker.gpu_model_runner")
    if runner_module is not None:
        runner_module.Sampler = FastsampleSampler
