"""What the CPU and GPU kernel benchmarks share beyond fastsample.bench.workload (cases, logits,
transformers' chain): the filter and history-edit costs, penalties and a model-like step."""
import os

import torch

from fastsample.bench.workload import CASES, hf_chain, make_logits  # noqa: F401

# The pytest-benchmark suite's dtypes (the CLI also offers float16).
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
