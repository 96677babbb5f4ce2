"""Decode-loop benchmark (issue 6): 64 tokens for 8 prompts with a tiny random Llama
(V = 32000), sampling with fastsample's Sampler or with transformers' own chain (warpers, then
softmax + multinomial) under the same parameters, in one run. Each records the share of the
step spent sampling (extra_info["sampling_share"]); report.py prints the ratio of shares.
test_decode_loop_structured runs the same loop with half the requests JSON-schema constrained
(xgrammar masks, filled while the model runs) beside the unconstrained loop."""
import pathlib
import sys
import time

import pytest
import torch

import fastsample
from fastsample.decode.model_io import cache_keyword, output_cache

DEVICE = "cpu"
# hf-default as transformers' generation defaults run it; top-p-only, the case whose rows are
# shared by a team of threads.
CASES = {"hf-default": dict(temperature=0.7, top_k=50, top_p=0.9),
         "top-p-only": dict(temperature=0.8, top_p=0.9)}
PROMPTS, NEW_TOKENS, VOCAB = 8, 64, 32000


def _model():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2)).eval()


def _hf_sampler(params):
    from transformers import (LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)
    chain = LogitsProcessorList([TemperatureLogitsWarper(params["temperature"])]
                                + ([TopKLogitsWarper(params["top_k"])] if "top_k" in params
                                   else []) + [TopPLogitsWarper(params["top_p"])])

    def sample(input_ids, logits):
        scores = chain(input_ids, logits)
        return torch.multinomial(torch.softmax(scores, dim=-1), 1)[:, 0]

    return sample


def _forward(model, step_ids, past):
    """One decode step of the model: (its cache, the last position's float32 logits)."""
    with torch.no_grad():
        out = model(input_ids=step_ids, use_cache=True, **{cache_keyword(model): past})
    return output_cache(out), out.logits[:, -1, :].float()


def _run(model, impl, params):
    """One generation; returns (seconds in the model, seconds sampling)."""
    input_ids = torch.randint(3, VOCAB, (PROMPTS, 16), generator=torch.Generator().manual_seed(1))
    past, step_ids, ids = None, input_ids, input_ids
    if impl == "fastsample":
        sampler = fastsample.Sampler(VOCAB)
        for i in range(PROMPTS):
            sampler.add(i, fastsample.SamplingParams(**params, seed=i, max_tokens=NEW_TOKENS))
    else:
        hf_sample = _hf_sampler(params)
    t_model = t_sample = 0.0
    for _ in range(NEW_TOKENS):
        t0 = time.perf_counter()
        past, logits = _forward(model, step_ids, past)
        t1 = time.perf_counter()
        if impl == "fastsample":
            tokens = sampler.step(logits).tokens
        else:
            tokens = hf_sample(ids, logits)
        t2 = time.perf_counter()
        t_model += t1 - t0
        t_sample += t2 - t1
        step_ids = tokens[:, None]
        ids = torch.cat([ids, step_ids], dim=1)
    return t_model, t_sample


@pytest.mark.parametrize("impl", ["fastsample", "hf-sampling"])
@pytest.mark.parametrize("case", list(CASES))
def test_decode_loop(benchmark, case, impl):
    pytest.importorskip("transformers")
    model = _model()
    benchmark.group = f"decode-loop {case} {PROMPTS} prompts x {NEW_TOKENS} tokens V={VOCAB}"
    shares = []

    def run():
        t_model, t_sample = _run(model, impl, CASES[case])
        shares.append(t_sample / (t_model + t_sample))

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["sampling_share"] = min(shares)


# A schema no row completes within NEW_TOKENS (at least 40 items of two tokens or more), so
# every row runs every step and the two loops compare like for like.
DIGITS = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
          "minItems": 40}


def _grammar_tokenizer():
    # The tests' byte-level BPE (tests/tiny_models.py): ids past it are masked for V = 32000.
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
    from tiny_models import bpe_tokenizer
    return bpe_tokenizer()


@pytest.mark.parametrize("impl", ["unconstrained", "half-json"])
def test_decode_loop_structured(benchmark, impl):
    pytest.importorskip("xgrammar")
    model, tok = _model(), _grammar_tokenizer()
    benchmark.group = f"decode-loop structured {PROMPTS} prompts x {NEW_TOKENS} tokens V={VOCAB}"
    input_ids = torch.randint(3, VOCAB, (PROMPTS, 16), generator=torch.Generator().manual_seed(1))
    shares, steps = [], []

    def run():
        sampler = fastsample.Sampler(VOCAB, tokenizer=tok)
        for i in range(PROMPTS):
            grammar = {"guided_json": DIGITS} if impl == "half-json" and i % 2 == 0 else None
            sampler.add(i, fastsample.SamplingParams(**CASES["hf-default"], seed=i,
                                                     max_tokens=NEW_TOKENS, ignore_eos=True,
                                                     structured_output=grammar))
        past, step_ids = None, input_ids
        t_model = t_sample = 0.0
        for _ in range(NEW_TOKENS):
            t0 = time.perf_counter()
            past, logits = _forward(model, step_ids, past)
            t1 = time.perf_counter()
            step = sampler.step(logits)
            t2 = time.perf_counter()
            t_model += t1 - t0
            t_sample += t2 - t1
            step_ids = step.tokens[:, None]
        shares.append(t_sample / (t_model + t_sample))
        steps.append((t_model + t_sample) / NEW_TOKENS)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["sampling_share"] = min(shares)
    benchmark.extra_info["step_ms"] = min(steps) * 1e3
