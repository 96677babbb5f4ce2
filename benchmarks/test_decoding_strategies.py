"""Decoding-strategy benchmark: the strategy's own time (everything but the model's forward
passes) per prompt and generated token, on the same tiny random Llama (V = 32000) in one run:
beam search in fastsample.generate beside transformers' generate(num_beams), and contrastive
search (penalty_alpha 0.6, top_k 4: xTuring's default) beside the plain-torch search of
fastsample.reference.contrastive (transformers 4.x's algorithm, one prompt at a time).
extra_info["strategy_ms"]: that time; report.py prints the ratios."""
import time

import pytest
import torch

import fastsample

PROMPTS, PROMPT_LEN, NEW_TOKENS, BEAMS, VOCAB = 4, 16, 32, 4, 32000


def _model():
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, eos_token_id=None,
                                        bos_token_id=None, pad_token_id=0)).eval()


class ForwardClock:
    """Seconds spent in the model's forward passes, and how many."""

    def __init__(self, model):
        self.seconds, self.calls, self._start = 0.0, 0, 0.0
        self._hooks = [model.register_forward_pre_hook(self._begin),
                       model.register_forward_hook(self._end)]

    def _begin(self, *_):
        self._start = time.perf_counter()

    def _end(self, *_):
        self.seconds += time.perf_counter() - self._start
        self.calls += 1

    def remove(self):
        for h in self._hooks:
            h.remove()


def _prompts():
    return torch.randint(3, VOCAB, (PROMPTS, PROMPT_LEN),
                         generator=torch.Generator().manual_seed(1))


def _beam(model, impl, prompts):
    if impl == "fastsample":
        params = fastsample.SamplingParams(temperature=0.0, num_beams=BEAMS,
                                           max_tokens=NEW_TOKENS, min_tokens=NEW_TOKENS,
                                           eos_token_ids=[])
        fastsample.generate(model, prompts, params)
    else:
        model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts),
                       do_sample=False, num_beams=BEAMS, max_new_tokens=NEW_TOKENS,
                       min_new_tokens=NEW_TOKENS, pad_token_id=0)


def _contrastive(model, impl, prompts):
    if impl == "fastsample":
        params = fastsample.SamplingParams(temperature=0.0, top_k=4, penalty_alpha=0.6,
                                           max_tokens=NEW_TOKENS, ignore_eos=True)
        fastsample.generate(model, prompts, params)
    else:
        from fastsample.reference.contrastive import contrastive_search
        for prompt in prompts.tolist():
            contrastive_search(model, prompt, 0.6, 4, NEW_TOKENS)


def _strategy_time(benchmark, model, search):
    """Runs search() in the benchmark; records the time outside the model per prompt and
    generated token (ms)."""
    overheads = []

    def run():
        clock = ForwardClock(model)
        t0 = time.perf_counter()
        search()
        total = time.perf_counter() - t0
        clock.remove()
        overheads.append((total - clock.seconds) / (PROMPTS * NEW_TOKENS))

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    benchmark.extra_info["strategy_ms"] = min(overheads) * 1e3


@pytest.mark.parametrize("impl", ["fastsample", "transformers"])
def test_beam_search_step(benchmark, impl):
    pytest.importorskip("transformers")
    model, prompts = _model(), _prompts()
    benchmark.group = (f"beam-search {PROMPTS} prompts x {BEAMS} beams x {NEW_TOKENS} tokens "
                       f"V={VOCAB}")
    _strategy_time(benchmark, model, lambda: _beam(model, impl, prompts))


@pytest.mark.parametrize("impl", ["fastsample", "plain-torch"])
def test_contrastive_search_step(benchmark, impl):
    pytest.importorskip("transformers")
    model, prompts = _model(), _prompts()
    benchmark.group = (f"contrastive-search {PROMPTS} prompts x top_k 4 x {NEW_TOKENS} tokens "
                       f"V={VOCAB}")
    _strategy_time(benchmark, model, lambda: _contrastive(model, impl, prompts))
