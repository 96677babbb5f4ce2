"""SGLang sampling backend "fastsample" (importable only where sglang is installed).

    pip install fastsample            # beside sglang: its entry point registers the backend
    python -m sglang.launch_server --model-path ... --sampling-backend fastsample

`register()` is the `sglang.srt.plugins` entry point (SGLang loads it before parsing arguments and
in every scheduler process; `SGLANG_PLUGINS` filters plugins by name). It registers the backend and
makes SGLang keep each request's `sampling_seed` in the batch while this backend is selected.

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
deterministic-inference mode always switches to its pytorch backend.
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
    """Per-row seeds (-1: unseeded) from the batch, or None when it carries none."""
    seeds = sampling_info.sampling_seed
    if seeds is None:
        return None
    if seeds.shape != (logits.shape[0],):
        raise ValueError(f"sampling_info.sampling_seed has shape {tuple(seeds.shape)}; the "
                         f"batch has {logits.shape[0]} rows")
    return seeds.to(logits.device)


def request_seeds(reqs: List[Any], device: Any) -> torch.Tensor:
    """int64 [len(reqs)]: each request's `sampling_params.sampling_seed` folded into
    [0, 2**63 - 1] (seed & (2**63 - 1): distinct seeds that differ only in the sign bit share a
    stream), -1 where it has none."""
    return torch.tensor(
        [-1 if r.sampling_params.sampling_seed is None
         else int(r.sampling_params.sampling_seed) & _SEED_BITS for r in reqs],
        dtype=torch.int64).to(device)


def _keeping_request_seeds(from_schedule_batch: Any) -> Any:
    """SamplingBatchInfo.from_schedule_batch that keeps the requests' seeds while this backend
    is selected (SGLang itself keeps them only in its deterministic mode)."""

    def build(cls: type, batch: Any, vocab_size: int) -> SamplingBatchInfo:
        info = from_schedule_batch.__func__(cls, batch, vocab_size)
        if info.sampling_seed is None and runtime_context.get_exec().kernel.sampling_backend == BACKEND:
            info.sampling_seed = request_seeds(batch.reqs, info.temperatures.device)
        return info

    build.fastsample_keeps_seeds = True
    return classmethod(build)


def register() -> None:
    """The `sglang.srt.plugins` entry point: registers --sampling-backend fastsample."""
    sglang_sampler.register_sampler_backend(BACKEND, FastsampleSglangSampler)
    current = SamplingBatchInfo.__dict__["from_schedule_batch"]
    if not getattr(current.__func__, "fastsample_keeps_seeds", False):
        SamplingBatchInfo.from_schedule_batch = _keeping_request_seeds(current)
