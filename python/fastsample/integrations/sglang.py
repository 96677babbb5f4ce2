"""SGLang sampling backend "fastsample" (importable only where sglang is installed).

    pip install fastsample            # beside sglang: its entry point registers the backend
    python -m sglang.launch_server --model-path ... --sampling-backend fastsample

`register()` is the `sglang.srt.plugins` entry point (SGLang loads it before parsing arguments and
in every scheduler process; `SGLANG_PLUGINS` filters plugins by name). It registers the backend and,
through SamplingBatchInfo's override hooks, makes SGLang's batches keep each request's
`sampling_seed` while this backend is selected.

What `FastsampleSglangSampler.forward` does, in order:
1. SGLang's own preprocessing (custom logit processors, NaN sanitizing). Penalties, logit_bias
   and grammar masks were applied by SGLang before the sampler, as for every backend.
2. All-greedy batches: argmax, as SGLang's sampler.
3. Otherwise one fused `fastsample.sample` over the batch: temperature, top-k, top-p, min-p and
   the draw; greedy requests (which SGLang sends as top_k = 1) keep their argmax. A request with
   a `sampling_seed` draws from fastsample's Philox stream at (seed, position), so the same seed
   and prompt repeat the same tokens whatever else is in the batch; other rows draw fresh seeds.
4. Logprobs by SGLang's contract (temperature-scaled log-softmax over the whole vocabulary, or
   before temperature with SGLANG_RETURN_ORIGINAL_LOGPROB) through SGLang's own
   OutputLogprobProcessor; then SGLang's token sync across tensor-parallel ranks.
Not produced: sampling masks (`return_sampling_mask` requests) and watermarking; SGLang's
deterministic-inference mode always switches to its pytorch backend. Speculative decoding (EAGLE):
the drafts' draws and their acceptance are SGLang's own, not this backend's.
"""
from __future__ import annotations

from typing import Any, List, Optional

import torch

try:
    from sglang.srt import runtime_context
    from sglang.srt.layers import sampler as sglang_sampler
    from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo
except ImportError as e:  # pragma: no cover - exercised only without sglang
    raise ImportError("fastsample.integrations.sglang needs SGLang: pip install sglang") from e

from ..kernel.cuda import host_to_device
from .engine_draw import sample_engine_rows

BACKEND = "fastsample"
# SGLang's seeds span int64; fastsample's span [0, 2**63 - 1] with -1 for "unseeded".
_SEED_BITS = (1 << 63) - 1


class FastsampleSglangSampler(sglang_sampler.Sampler):
    """SGLang's Sampler with fastsample's fused filter-and-draw (module docstring: the order)."""

    def forward(
        self,
        logits_output: Any,
        sampling_info: SamplingBatchInfo,
        return_logprob: bool,
        top_logprobs_nums: List[int],
        token_ids_logprobs: List[List[int]],
        positions: torch.Tensor,
        *,
        logprob_logits: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Returns int64 [bs] token ids on the logits' device; writes the logprob fields of
        `logits_output` when return_logprob (SGLang's Sampler.forward contract)."""
        if logprob_logits is not None:
            raise ValueError("the fastsample sampling backend does not watermark; serve "
                             "watermarked requests with a built-in --sampling-backend")
        if sampling_info.sampling_mask_batch_indices is not None:
            raise ValueError("the fastsample sampling backend does not return sampling masks "
                             "(return_sampling_mask); use a built-in --sampling-backend")
        logits = self._preprocess_logits(logits_output.next_token_logits, sampling_info)
        if sampling_info.is_all_greedy:
            tokens = torch.argmax(logits, -1)
            logprobs = torch.log_softmax(logits, dim=-1) if return_logprob else None
        else:
            temperatures = sampling_info.temperatures.view(-1)
            # SGLang sends greedy requests as top_k = 1: argmax, lowest index on ties, as its
            # greedy path (fastsample's top-k keeps every token tied at the k-th value).
            greedy = sampling_info.top_ks == 1
            tokens = sample_engine_rows(
                logits, temperature=torch.where(greedy, 0.0, temperatures),
                top_k=sampling_info.top_ks,
                top_p=sampling_info.top_ps, min_p=sampling_info.min_ps,
                seed=_row_seeds(sampling_info, logits), offset=positions)
            logprobs = None
            if return_logprob:
                scaled = logits if sglang_sampler.SGLANG_RETURN_ORIGINAL_LOGPROB else \
                    logits / temperatures.unsqueeze(1)
                logprobs = torch.log_softmax(scaled, dim=-1)
        if return_logprob:
            self.output_logprob_processor.compute_logprobs(
                logprobs, top_logprobs_nums, token_ids_logprobs, tokens,
            ).write_output_to(logits_output)
        self._sync_token_ids_across_tp(tokens, sampling_info)
        return tokens


def _row_seeds(sampling_info: SamplingBatchInfo, logits: torch.Tensor) -> Any:
    """Per-row seeds (-1: unseeded) the batch carries, or None."""
    seeds = getattr(sampling_info, SEEDS, None)
    if seeds is None:
        seeds = sampling_info.sampling_seed  # SGLang's deterministic mode's, were it to reach here
    if seeds is None:
        return None
    if seeds.shape != (logits.shape[0],):
        raise ValueError(f"the batch's request seeds have shape {tuple(seeds.shape)}; the batch "
                         f"has {logits.shape[0]} rows")
    return seeds


def request_seeds(reqs: List[Any], device: Any) -> torch.Tensor:
    """int64 [len(reqs)] on `device`: each request's `sampling_params.sampling_seed` folded into
    [0, 2**63 - 1] (seed & (2**63 - 1): distinct seeds that differ only in the sign bit share a
    stream), -1 where it has none. Copied as SGLang copies its batch tensors (pinned, without
    waiting)."""
    host = torch.tensor(
        [-1 if r.sampling_params.sampling_seed is None
         else int(r.sampling_params.sampling_seed) & _SEED_BITS for r in reqs],
        dtype=torch.int64)
    return host_to_device(host, device)


# The batch's request seeds ride in an attribute of SamplingBatchInfo of their own: SGLang reads
# `sampling_seed` as "deterministic sampling" in paths that never reach the sampler (EAGLE's
# draft and verify draws), where unseeded rows would then all share one stream.
SEEDS = "fastsample_seeds"


def _selected() -> bool:
    return runtime_context.get_exec().kernel.sampling_backend == BACKEND


def _after(hook: Any, extend: Any) -> Any:
    """SGLang's override hook `hook` (a placeholder, or another plugin's), then `extend`."""

    def both(self: SamplingBatchInfo, *args: Any) -> None:
        hook(self, *args)
        extend(self, *args)

    both.fastsample_hook = True
    return both


def _keep_seeds(info: SamplingBatchInfo, batch: Any, vocab_size: int) -> None:
    if _selected():
        setattr(info, SEEDS, request_seeds(batch.reqs, info.temperatures.device))


def _filter_seeds(info: SamplingBatchInfo, keep_indices: Any, keep_indices_device: Any) -> None:
    seeds = getattr(info, SEEDS, None)
    if seeds is not None:
        setattr(info, SEEDS, seeds[keep_indices_device])


def _merge_seeds(info: SamplingBatchInfo, other: SamplingBatchInfo) -> None:
    # Called after SGLang concatenated the batch tensors: len(info) counts both batches.
    mine, theirs = getattr(info, SEEDS, None), getattr(other, SEEDS, None)
    if mine is None and theirs is None:
        return
    device = info.temperatures.device
    unseeded = lambda n: torch.full((n,), -1, dtype=torch.int64, device=device)  # noqa: E731
    mine = unseeded(len(info) - len(other)) if mine is None else mine
    theirs = unseeded(len(other)) if theirs is None else theirs
    setattr(info, SEEDS, torch.cat([mine, theirs]))


def _copying_seeds(copy_for_forward: Any) -> Any:
    """SamplingBatchInfo.copy_for_forward (a dataclasses.replace, which keeps only declared
    fields) keeping the seeds."""

    def copy(self: SamplingBatchInfo) -> SamplingBatchInfo:
        out = copy_for_forward(self)
        setattr(out, SEEDS, getattr(self, SEEDS, None))
        return out

    copy.fastsample_hook = True
    return copy


def register() -> None:
    """The `sglang.srt.plugins` entry point: registers --sampling-backend fastsample, and has
    SGLang's batches keep their requests' seeds while it is selected (through
    SamplingBatchInfo's override hooks)."""
    sglang_sampler.register_sampler_backend(BACKEND, FastsampleSglangSampler)
    if getattr(SamplingBatchInfo.copy_for_forward, "fastsample_hook", False):
        return  # loaded again in this process
    SamplingBatchInfo.adjusted_from_schedule_batch = _after(
        SamplingBatchInfo.adjusted_from_schedule_batch, _keep_seeds)
    SamplingBatchInfo.adjusted_filter_batch = _after(
        SamplingBatchInfo.adjusted_filter_batch, _filter_seeds)
    SamplingBatchInfo.adjusted_merge_batch = _after(
        SamplingBatchInfo.adjusted_merge_batch, _merge_seeds)
    SamplingBatchInfo.copy_for_forward = _copying_seeds(SamplingBatchInfo.copy_for_forward)
