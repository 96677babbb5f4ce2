"""What the CPU and GPU kernel benchmarks share: the parameter cases, LLM-like logits and the
Hugging Face warper chain they are compared with."""
import os

import torch

CASES = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p-only": dict(temperature=0.8, top_p=0.9),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# Each filter of issue 23 added to hf-default: what it costs on top of the common case.
FILTER_COSTS = {
    "hf-default": {},
    "typical_p": dict(typical_p=0.9),
    "epsilon_cutoff": dict(epsilon_cutoff=3e-4),
    "eta_cutoff": dict(eta_cutoff=1e-3),
    "top_n_sigma": dict(top_n_sigma=1.0),
    "xtc": dict(xtc_threshold=0.1, xtc_probability=0.5),
}
# Each history edit of issue 23 added to hf-default, over a history of 1024 ids (768 prompt, 256
# output: history_kwargs, unless the entry brings its own), beside hf-default without one and with
# the oldest history edit (a repetition penalty) over the same history: 100 two-token bad words
# are a sequence_bias of -inf.
EDIT_COSTS = {
    "repetition_penalty": dict(repetition_penalty=1.1),
    "no_repeat_ngram_size": dict(no_repeat_ngram_size=3),
    "bad_words": dict(sequence_bias={(2 * i + 7, 3 * i + 11): float("-inf") for i in range(100)}),
    # llama.cpp's DRY defaults with four one-token breakers; then over a history that loops (a
    # 64-token block, 16 times: every position repeats, DRY's worst case short of one token).
    "dry": dict(dry_multiplier=0.8, dry_sequence_breakers=[[13], [25], [1], [330]]),
    "dry_looping_history": dict(dry_multiplier=0.8, dry_sequence_breakers=[[13], [25], [1], [330]],
                                prompt_token_ids=(torch.arange(64) + 1000).repeat(64, 12),
                                output_token_ids=(torch.arange(64) + 1000).repeat(64, 4)),
}


def history_kwargs(batch, vocab):
    g = torch.Generator().manual_seed(3)
    return dict(prompt_token_ids=torch.randint(0, vocab, (batch, 768), generator=g),
                output_token_ids=torch.randint(0, vocab, (batch, 256), generator=g))

# "penalties-heavy" (issue 4): 4096 history tokens, repetition 1.1, frequency 0.5, presence 0.5,
# logit_bias on 100 tokens, T 1.0, top_p 0.95, logprobs 5; compared with "penalties-off", the
# same call without penalties, bias or logprobs.
PENALTY_BASE = dict(temperature=1.0, top_p=0.95)


def penalty_kwargs(batch, vocab, device="cpu"):
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, vocab, (batch, 3072), generator=g).to(device)
    output = torch.randint(0, vocab, (batch, 1024), generator=g).to(device)
    bias = {int(t): 2.0 for t in torch.randint(0, vocab, (100,), generator=g)}
    return dict(PENALTY_BASE, repetition_penalty=1.1, frequency_penalty=0.5, presence_penalty=0.5,
                prompt_token_ids=prompt, output_token_ids=output, logit_bias=bias, logprobs=5)


def env_list(name, default):
    """Comma-separated ints from the environment (to restrict a run), else the default list."""
    return [int(v) for v in os.environ.get(name, default).split(",")]


def make_logits(batch, vocab, dtype, device="cpu"):
    g = torch.Generator().manual_seed(0)
    # LLM-like: most logits in a broad normal bulk, a few standing well above it.
    x = torch.randn(batch, vocab, generator=g) * 3.0
    x[:, : vocab // 1000] += 8.0
    return x.to(device=device, dtype=dtype)


def hf_chain(params):
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


class ModelStep:
    """What precedes sampling in a decode step, in miniature: a large matmul on torch's
    intra-op threads (the model's layers), then the matmul that writes the logits (an LM head;
    here an identity, so the logits keep their values). Calling it returns fresh logits."""

    def __init__(self, logits, width=512):
        g = torch.Generator().manual_seed(2)
        self.layer = torch.randn(width, width, generator=g).to(logits.device)
        self.head_input = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
        self.logits = logits

    def __call__(self):
        torch.tanh(self.layer @ self.layer).sum()
        return torch.mm(self.head_input, self.logits)
