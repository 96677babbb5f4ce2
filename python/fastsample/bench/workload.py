"""What the kernel benchmarks run: the parameter cases, LLM-like logits, and the sizes of the
quick and full runs. benchmarks/ (pytest-benchmark, CI's regression numbers) runs the same."""
from __future__ import annotations

from typing import Dict

import torch

CASES: Dict[str, dict] = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p-only": dict(temperature=0.8, top_p=0.9),
}
DTYPES: Dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16,
                                  "float16": torch.float16}
# A few sizes in under two minutes on two cores; --full: what serving sees.
QUICK = dict(batches=[1, 64], vocabs=[32000, 128256], dtypes=["float32"])
FULL = dict(batches=[1, 16, 64, 256], vocabs=[32000, 128256, 256000],
            dtypes=["float32", "bfloat16"])


def make_logits(batch: int, vocab: int, dtype: torch.dtype, device: str = "cpu") -> torch.Tensor:
    """[batch, vocab] logits of `dtype` on `device`, the same for every peer of a run."""
    g = torch.Generator().manual_seed(0)
    # LLM-like: most logits in a broad normal bulk, a few standing well above it.
    x = torch.randn(batch, vocab, generator=g) * 3.0
    x[:, : vocab // 1000] += 8.0
    return x.to(device=device, dtype=dtype)


def hf_chain(params: dict):
    """transformers' processors and warpers for `params` (in generate's order), then softmax +
    multinomial: a callable on logits. transformers has no warper for top_n_sigma or XTC: those
    raise. The history (prompt then output ids) is the chain's input_ids."""
    from transformers import (EpsilonLogitsWarper, EtaLogitsWarper, LogitsProcessorList,
                              MinPLogitsWarper, NoRepeatNGramLogitsProcessor,
                              RepetitionPenaltyLogitsProcessor, SequenceBiasLogitsProcessor,
                              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
                              TypicalLogitsWarper)
    unknown = set(params) - {"temperature", "top_k", "top_p", "min_p", "typical_p",
                             "epsilon_cutoff", "eta_cutoff", "no_repeat_ngram_size",
                             "sequence_bias", "repetition_penalty", "prompt_token_ids",
                             "output_token_ids"}
    if unknown:
        raise ValueError(f"transformers has no warper for {sorted(unknown)}")
    input_ids = None
    if "prompt_token_ids" in params:
        input_ids = torch.cat([params["prompt_token_ids"], params["output_token_ids"]], dim=1)
    warpers = []
    if params.get("sequence_bias"):
        warpers.append(SequenceBiasLogitsProcessor(params["sequence_bias"]))
    if params.get("repetition_penalty", 1.0) != 1.0:
        warpers.append(RepetitionPenaltyLogitsProcessor(params["repetition_penalty"]))
    if params.get("no_repeat_ngram_size"):
        warpers.append(NoRepeatNGramLogitsProcessor(params["no_repeat_ngram_size"]))
    warpers.append(TemperatureLogitsWarper(params["temperature"]))
    if params.get("top_k"):
        warpers.append(TopKLogitsWarper(params["top_k"]))
    if params.get("top_p", 1.0) < 1.0:
        warpers.append(TopPLogitsWarper(params["top_p"]))
    if params.get("min_p"):
        warpers.append(MinPLogitsWarper(params["min_p"]))
    if params.get("typical_p", 1.0) < 1.0:
        warpers.append(TypicalLogitsWarper(params["typical_p"]))
    if params.get("epsilon_cutoff"):
        warpers.append(EpsilonLogitsWarper(params["epsilon_cutoff"]))
    if params.get("eta_cutoff"):
        warpers.append(EtaLogitsWarper(params["eta_cutoff"]))
    chain = LogitsProcessorList(warpers)

    def run(logits):
        scores = chain(input_ids, logits.float())
        return torch.multinomial(torch.softmax(scores, dim=-1), 1)[:, 0]

    return run
