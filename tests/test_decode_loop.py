"""Decode loop: Sampler, generate(), the transformers integration and torch.compile, on tiny
random-weight models (LlamaForCausalLM, GPT2LMHeadModel) with a locally built tokenizer."""
import math
import re

import pytest
import torch

import fastsample
from fastsample import Sampler, SamplingParams

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
from tiny_models import gpt2, llama, tokenizer  # noqa: E402

PROMPTS = ["w1 w2 w3 w4", "w5 w6", "w7 w8 w9 w10 w11 w12"]


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


@pytest.mark.parametrize("make", [llama, gpt2], ids=["llama", "gpt2"])
def test_greedy_generate_equals_transformers(make, tok):
    model = make()
    params = SamplingParams(temperature=0.0, max_tokens=12, min_tokens=12)
    got = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    want = model.generate(**enc, do_sample=False, max_new_tokens=12, min_new_tokens=12,
                          pad_token_id=0)
    for i, res in enumerate(got):
        assert res.token_ids == want[i, enc["input_ids"].shape[1]:].tolist()
        assert res.finish_reason == "length"
        assert res.text == tok.decode(res.token_ids, skip_special_tokens=True)


def test_sampled_generate_reproducible_and_batch_independent(tok):
    model = llama()
    params = [SamplingParams(temperature=0.9, top_p=0.95, seed=s, max_tokens=8, ignore_eos=True)
              for s in (11, 12, 13)]
    a = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    b = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    # A request's tokens do not depend on the other prompts of the batch.
    alone = fastsample.generate(model, PROMPTS[1:2], params[1], tokenizer=tok)
    assert alone[0].token_ids == a[1].token_ids
    other = fastsample.generate(model, [PROMPTS[1], "w30 w31 w32"], [params[1], params[0]],
                                tokenizer=tok)
    assert other[0].token_ids == a[1].token_ids


def _fixed_logits(rows, vocab, favourite):
    """Logits where `favourite[i]` wins row i by far (a deterministic greedy script)."""
    x = torch.zeros(rows, vocab)
    for i, t in enumerate(favourite):
        x[i, t] = 20.0
    return x


def test_sampler_stop_ids_eos_min_tokens_and_max_tokens():
    s = Sampler(10, eos_token_id=1)
    s.add("eos", SamplingParams(temperature=0.0))
    s.add("stop", SamplingParams(temperature=0.0, stop_token_ids=(2,)))
    s.add("min", SamplingParams(temperature=0.0, min_tokens=2))
    s.add("ignore", SamplingParams(temperature=0.0, ignore_eos=True, max_tokens=2))
    # Row favourites: EOS, stop id 2, EOS (suppressed below min_tokens), EOS (ignored).
    out = s.step(_fixed_logits(4, 10, [1, 2, 1, 1]))
    assert [(o.token, o.finish_reason) for o in out] == [(1, "eos"), (2, "stop"), (0, None), (1, None)]
    assert s.request_ids == ["min", "ignore"]
    out = s.step(_fixed_logits(2, 10, [1, 1]))
    assert [(o.token, o.finish_reason) for o in out] == [(0, None), (1, "length")]
    out = s.step(_fixed_logits(1, 10, [1]))
    assert [(o.token, o.finish_reason) for o in out] == [(1, "eos")]
    assert len(s) == 0


def test_step_tokens_tensor_matches_outputs():
    """step(...).tokens: the step's tokens as an int64 tensor on the Sampler's device, in row
    order, equal to the per-request outputs (finished rows included)."""
    s = Sampler(10, eos_token_id=1)
    s.add("a", SamplingParams(temperature=0.0))
    s.add("b", SamplingParams(temperature=0.7, top_k=3, seed=5))
    out = s.step(_fixed_logits(2, 10, [1, 4]))
    assert out.tokens.dtype == torch.int64 and out.tokens.device == s.device
    assert out.tokens.tolist() == [o.token for o in out]
    assert out[0].finish_reason == "eos"
    empty = Sampler(10).step(torch.zeros(0, 10))
    assert list(empty) == [] and empty.tokens.shape == (0,)


def test_sampler_stop_strings_need_a_tokenizer_and_are_cut(tok):
    with pytest.raises(ValueError, match="stop strings need a tokenizer"):
        Sampler(123).add(0, SamplingParams(stop=("w7",)))
    s = Sampler(123, tokenizer=tok)
    s.add(0, SamplingParams(temperature=0.0, stop=("w7 w8",)))
    script = [tok.convert_tokens_to_ids(w) for w in ("w5", "w6", "w7", "w8", "w9")]
    outs = [s.step(_fixed_logits(1, 123, [t]))[0] for t in script[:4]]
    assert [o.finish_reason for o in outs] == [None, None, None, "stop"]
    assert outs[-1].text == "w5 w6 "  # the stop string and what follows are cut
    assert len(s) == 0


def test_requests_join_and_leave_mid_generation():
    """A seeded request's tokens do not change when others join or leave around it."""
    vocab = 200
    g = torch.Generator().manual_seed(0)
    steps = [torch.randn(1, vocab, generator=g) for _ in range(6)]
    params = SamplingParams(temperature=1.0, top_k=40, seed=7, repetition_penalty=1.3,
                            presence_penalty=0.2, logprobs=2)
    alone = Sampler(vocab)
    alone.add("a", params, [1, 2, 3])
    want = [alone.step(x)[0] for x in steps]
    s = Sampler(vocab)
    s.add("x", SamplingParams(temperature=0.5, seed=1, banned_token_ids=(5,)), [9])
    s.add("a", params, [1, 2, 3])
    got = []
    for i, x in enumerate(steps):
        if i == 2:
            s.remove("x")
            s.add("y", SamplingParams(temperature=1.0, seed=2, logit_bias={4: 3.0}, logprobs=1))
        if i == 4:
            s.add("z", SamplingParams(temperature=0.0, min_tokens=1, max_tokens=1))
        rows = [x if rid == "a" else torch.randn(1, vocab, generator=g) for rid in s.request_ids]
        out = {o.request_id: o for o in s.step(torch.cat(rows))}
        got.append(out["a"])
    assert [o.token for o in got] == [o.token for o in want]
    assert [o.logprob for o in got] == pytest.approx([o.logprob for o in want], abs=1e-6)
    assert [o.top_ids for o in got] == [o.top_ids for o in want]


def test_sampler_errors_name_the_request():
    s = Sampler(10)
    s.add("all-banned", SamplingParams(temperature=1.0, banned_token_ids=tuple(range(10))))
    with pytest.raises(ValueError, match=r"requests \['all-banned'\] have no valid token"):
        s.step(torch.zeros(1, 10))
    s = Sampler(10)
    with pytest.raises(ValueError, match=r"request 'r': prompt_token_ids\[1\]=10 is out of range"):
        s.add("r", SamplingParams(), [1, 10])
    s.add("r", SamplingParams())
    with pytest.raises(ValueError, match="already in the batch"):
        s.add("r", SamplingParams())
    with pytest.raises(ValueError, match=r"logits must have shape \[1, 10\]"):
        s.step(torch.zeros(2, 10))


def test_stream_yields_every_token(tok):
    model = gpt2()
    params = SamplingParams(temperature=0.0, max_tokens=4, min_tokens=4)
    events = list(fastsample.generate(model, PROMPTS[:2], params, tokenizer=tok, stream=True))
    assert len(events) == 8 and {e.index for e in events} == {0, 1}
    final = fastsample.generate(model, PROMPTS[:2], params, tokenizer=tok)
    assert [e.output.token for e in events if e.index == 0] == final[0].token_ids


def test_processor_equals_the_hf_chain():
    from transformers import (LogitsProcessorList, MinPLogitsWarper, RepetitionPenaltyLogitsProcessor,
                              TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)
    from fastsample.transformers import FastLogitsProcessor
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 3000, generator=g) * 3
    ids = torch.randint(0, 3000, (4, 40), generator=g)
    proc = FastLogitsProcessor(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05,
                               repetition_penalty=1.2)
    chain = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.2), TemperatureLogitsWarper(0.7),
                                 TopKLogitsWarper(50), TopPLogitsWarper(0.9), MinPLogitsWarper(0.05)])
    assert torch.equal(proc(ids, scores.clone()), chain(ids, scores.clone()))


def test_processor_in_generate_and_transformers_defaults(tok):
    from transformers import GenerationConfig, LogitsProcessorList
    from fastsample.transformers import FastLogitsProcessor, from_generation_config
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    proc = FastLogitsProcessor(temperature=0.8, top_k=5)
    torch.manual_seed(0)
    out = model.generate(**enc, logits_processor=LogitsProcessorList([proc]), max_new_tokens=4,
                         pad_token_id=0, **proc.generate_kwargs())
    assert out.shape == (3, enc["input_ids"].shape[1] + 4)
    # transformers v5 adds its own TopK(50) after our processor unless generate_kwargs() turns
    # its warpers off: the scores generate reports show which filters ran.
    wide = FastLogitsProcessor(temperature=2.0)  # keeps every token of this model
    one = tok(["w1 w2 w3"], return_tensors="pt")
    with torch.no_grad():
        want = wide(one["input_ids"], model(**one).logits[:, -1, :])
    for kw, kept in [(dict(do_sample=True), 50), (wide.generate_kwargs(), want.shape[1])]:
        res = model.generate(**one, logits_processor=LogitsProcessorList([wide]), max_new_tokens=1,
                             output_scores=True, return_dict_in_generate=True, pad_token_id=0, **kw)
        assert int((res.scores[0] > -float("inf")).sum()) == kept
    assert torch.allclose(res.scores[0], want, atol=1e-5)
    p = from_generation_config(GenerationConfig(do_sample=True, temperature=0.6, top_p=0.8))
    assert (p.params.temperature, p.params.top_k, p.params.top_p) == (0.6, 50, 0.8)


def test_custom_generate_sample_loop(tok):
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    greedy = model.generate(**enc, custom_generate=sample_loop, do_sample=False,
                            max_new_tokens=6, min_new_tokens=6, pad_token_id=0)
    want = model.generate(**enc, do_sample=False, max_new_tokens=6, min_new_tokens=6,
                          pad_token_id=0)
    assert torch.equal(greedy, want)
    sampled = model.generate(**enc, custom_generate=sample_loop, do_sample=True, temperature=0.9,
                             top_k=20, seed=None, max_new_tokens=5, pad_token_id=0)
    assert sampled.shape[0] == 3 and sampled.shape[1] <= enc["input_ids"].shape[1] + 5


@pytest.mark.parametrize("fields,message", [
    ({"num_beams": 2}, "sample_loop samples: num_beams=2 is beam search; use "
                       "custom_generate=fastsample.transformers.beam_search_loop"),
    ({"penalty_alpha": 0.6, "top_k": 4}, "sample_loop samples: penalty_alpha=0.6 is "
                                         "contrastive search"),
    ({"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 0.5},
     "sample_loop cannot run num_beam_groups=2")])
def test_custom_generate_sample_loop_refuses_what_it_cannot_run(tok, fields, message):
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    with pytest.raises(ValueError, match=re.escape(message)):
        model.generate(**enc, custom_generate=sample_loop, max_new_tokens=3, pad_token_id=0,
                       **fields)


def test_custom_generate_sample_loop_honours_typical_epsilon_and_eta(tok):
    """The generation config's typical_p, epsilon_cutoff and eta_cutoff reach the loop: its
    tokens are fastsample.generate's with the same SamplingParams and seed, and not those of
    the same seed without the filters."""
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    fields = dict(typical_p=0.2, epsilon_cutoff=1e-3, eta_cutoff=1e-3)
    kw = dict(do_sample=True, top_k=0, seed=5, max_new_tokens=8, pad_token_id=0)
    config = transformers.GenerationConfig
    got = model.generate(**enc, custom_generate=sample_loop,
                         generation_config=config(**kw, **fields))
    plain = model.generate(**enc, custom_generate=sample_loop, generation_config=config(**kw))
    want = fastsample.generate(model, enc["input_ids"], SamplingParams(seed=5, max_tokens=8,
                                                                       **fields))[0]
    prompt = enc["input_ids"].shape[1]
    assert got[0, prompt:prompt + len(want.token_ids)].tolist() == want.token_ids
    assert not torch.equal(got, plain)


def test_custom_generate_sample_loop_honours_min_length(tok):
    """min_length counts the prompt (transformers' MinLengthLogitsProcessor): with EOS set to
    the token greedy decoding picks first, transformers and the fastsample loop both go on
    until the sequence is min_length long, token for token."""
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    first = int(model.generate(**enc, do_sample=False, max_new_tokens=1, pad_token_id=0)[0, -1])
    length = enc["input_ids"].shape[1] + 4
    kw = dict(do_sample=False, max_new_tokens=8, min_length=length, eos_token_id=first,
              pad_token_id=0)
    want = model.generate(**enc, **kw)
    got = model.generate(**enc, custom_generate=sample_loop, **kw)
    assert want.shape[1] >= length and torch.equal(got, want)


def test_torch_compile_traces_sample_without_graph_break():
    x = torch.randn(4, 1000)

    def step(logits):
        return fastsample.sample(logits * 1.0, temperature=0.7, top_k=50, top_p=0.9, seed=3)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")  # fails on a break
    assert torch.equal(compiled(x), step(x))

    def proc(logits):
        return fastsample.process_logits(logits + 0.0, temperature=0.7, top_p=0.9)

    assert torch.equal(torch.compile(proc, fullgraph=True, backend="aot_eager")(x), proc(x))
    with pytest.raises(Exception, match="inside torch.compile"):
        torch.compile(lambda t: fastsample.sample(t, logprobs=2), fullgraph=True,
                      backend="aot_eager")(x)


def test_fields_the_decode_loop_cannot_run_are_rejected_not_ignored():
    s = Sampler(100)
    # A grammar needs the tokenizer (tests/test_structured_outputs.py runs them).
    with pytest.raises(ValueError, match=r"request 'r': structured_output needs the model's "
                                         r"tokenizer"):
        s.add("r", SamplingParams(structured_output={"guided_regex": "a+"}), [1, 2])
    assert s.request_ids == []
    from fastsample.transformers import FastLogitsProcessor
    with pytest.raises(ValueError, match="prompt_logprobs=.*cannot be run by a logits processor"):
        FastLogitsProcessor.from_params(SamplingParams(prompt_logprobs=1))
    with pytest.raises(ValueError, match="structured_output needs the model's tokenizer"):
        FastLogitsProcessor.from_params(SamplingParams(structured_output={"guided_regex": "a+"}))


def test_logits_processor_honours_allowed_token_ids():
    from fastsample.transformers import FastLogitsProcessor
    proc = FastLogitsProcessor.from_params(SamplingParams(temperature=0.5, allowed_token_ids=(3, 7)))
    scores = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    out = proc(torch.tensor([[1, 2], [4, 5]]), scores)
    assert out.isfinite().nonzero()[:, 1].tolist() == [3, 7, 3, 7]
    assert torch.equal(out, fastsample.process_logits(scores, temperature=0.5,
                                                      allowed_token_ids=[3, 7]))


def test_logits_processor_honours_min_tokens_like_transformers():
    """min_new_tokens from a GenerationConfig: EOS stays masked while fewer than min_tokens
    tokens follow the prompt (the first call's input_ids), as transformers'
    MinNewTokensLengthLogitsProcessor masks it; a new generate starts counting again."""
    from transformers import GenerationConfig, MinNewTokensLengthLogitsProcessor
    from fastsample.transformers import from_generation_config
    proc = from_generation_config(GenerationConfig(do_sample=True, min_new_tokens=3,
                                                   eos_token_id=2, top_k=0))
    hf = MinNewTokensLengthLogitsProcessor(prompt_length_to_skip=4, min_new_tokens=3,
                                           eos_token_id=2)
    g = torch.Generator().manual_seed(0)
    for start in (4, 4):  # two generates from a 4-token prompt
        ids = torch.randint(3, 50, (2, start), generator=g)
        for step in range(5):
            scores = torch.randn(2, 50, generator=g)
            got = proc(ids, scores)
            want = hf(ids, scores.clone())
            assert torch.equal(got[:, 2] == -math.inf, want[:, 2] == -math.inf), step
            assert bool((got[:, 2] == -math.inf).all()) == (step < 3)
            ids = torch.cat([ids, torch.randint(3, 50, (2, 1), generator=g)], dim=1)
    with pytest.raises(ValueError, match="min_tokens=3 masks EOS, but no EOS id is known"):
        from_generation_config(GenerationConfig(do_sample=True, min_new_tokens=3))


def test_logits_processor_honours_min_length_like_transformers():
    """min_length from a GenerationConfig counts the prompt: EOS stays masked while input_ids
    are shorter, as transformers' MinLengthLogitsProcessor masks it."""
    from transformers import GenerationConfig, MinLengthLogitsProcessor
    from fastsample.transformers import from_generation_config
    proc = from_generation_config(GenerationConfig(do_sample=True, min_length=8,
                                                   eos_token_id=2, top_k=0))
    hf = MinLengthLogitsProcessor(8, eos_token_id=2)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 50, (2, 5), generator=g)
    for step in range(5):
        scores = torch.randn(2, 50, generator=g)
        assert torch.equal(proc(ids, scores), hf(ids, scores.clone())), step
        assert bool((proc(ids, scores)[:, 2] == -math.inf).all()) == (ids.shape[1] < 8)
        ids = torch.cat([ids, torch.randint(3, 50, (2, 1), generator=g)], dim=1)
    with pytest.raises(ValueError, match="min_length=8 masks EOS, but no EOS id is known"):
        from_generation_config(GenerationConfig(do_sample=True, min_length=8))


def test_from_generation_config_refuses_what_it_cannot_run():
    from transformers import GenerationConfig
    from fastsample.transformers import from_generation_config
    with pytest.raises(ValueError, match="from_generation_config cannot run num_beam_groups"):
        from_generation_config(GenerationConfig(num_beams=4, num_beam_groups=2,
                                                diversity_penalty=0.5))
    # A whole-generation strategy: the processor sees one step at a time.
    for config, name in ((GenerationConfig(do_sample=False, penalty_alpha=0.6, top_k=4),
                          "penalty_alpha=0.6"),
                         (GenerationConfig(num_beams=3), "num_beams=3"),
                         (GenerationConfig(do_sample=True, num_return_sequences=2), "n=2")):
        with pytest.raises(ValueError, match=f"FastLogitsProcessor decodes one sequence per "
                                             f"request, step by step: {name}"):
            from_generation_config(config)


def test_prompt_logprobs_come_with_the_first_step(tok):
    """generate and the Sampler score each prompt (raw logprobs of tokens 1..L-1 under the
    prefill's logits) on a request's first step, equal to fastsample.prompt_logprobs on the
    model's own logits."""
    model = llama()
    prompts = ["w1 w2 w3 w4", "w5 w6"]
    params = [SamplingParams(prompt_logprobs=3, seed=1, max_tokens=3),
              SamplingParams(seed=2, max_tokens=3)]
    out = fastsample.generate(model, prompts, params, tokenizer=tok)
    assert out[1].prompt_logprobs is None
    ids = tok(prompts[0])["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    want = fastsample.prompt_logprobs(logits[:-1], ids[1:], 3)
    got = out[0].prompt_logprobs
    assert got.logprobs.shape == (len(ids) - 1,)
    assert torch.allclose(got.logprobs, want.logprobs, atol=1e-4)
    assert torch.equal(got.top_ids, want.top_ids)
    # The Sampler asks for them, and refuses a first step without them.
    s = Sampler(logits.shape[1])
    s.add("a", SamplingParams(prompt_logprobs=1, seed=0), ids)
    assert s.prompt_logits_wanted == ["a"]
    with pytest.raises(ValueError, match=r"requests \['a'\] asked for prompt_logprobs"):
        s.step(logits[-1:])
    with pytest.raises(ValueError, match=r"request 'a': prompt_logits must be \[4, "):
        s.step(logits[-1:], {"a": logits[:2]})
    first = s.step(logits[-1:], {"a": logits})[0]
    assert torch.equal(first.prompt_logprobs.top_ids, want.top_ids[:, :1])
    assert s.prompt_logits_wanted == []
    assert s.step(logits[-1:])[0].prompt_logprobs is None


def test_generation_config_lengths_reach_the_sampler():
    """max_length / min_length of a generation config count the prompt: a Sampler (and so
    generate) converts them with each request's own prompt, never drops them."""
    params = fastsample.from_hf({"do_sample": True, "max_length": 12, "min_length": 6,
                                 "eos_token_id": 2})
    sampler = fastsample.Sampler(10)
    sampler.add("short", params, [1, 1])
    sampler.add("long", params, [1, 1, 1, 1])
    x = torch.zeros(2, 10)
    x[:, 2] = 50.0  # EOS is the favourite: it ends a request once min_length allows
    lengths, reasons = {"short": 0, "long": 0}, {}
    while len(sampler):
        for res in sampler.step(x[:len(sampler)]):
            lengths[res.request_id] += 1
            reasons[res.request_id] = res.finish_reason
    # EOS right after min_length - prompt tokens (max_length would allow 10 and 8).
    assert lengths == {"short": 5, "long": 3} and set(reasons.values()) == {"eos"}
    capped = fastsample.from_hf({"do_sample": True, "max_length": 5})
    sampler.add("capped", capped, [3, 3, 3])
    steps = 0
    while len(sampler):
        sampler.step(torch.zeros(1, 10))
        steps += 1
    assert steps == 2  # max_length 5 - prompt 3


class _StopAtLength(transformers.StoppingCriteria):
    """A caller's own criterion: every row stops once the sequence is `length` long."""

    def __init__(self, length):
        self.length = length

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.length,
                          dtype=torch.bool)


class _Identity(transformers.LogitsProcessor):
    def __call__(self, input_ids, scores):
        return scores


def test_sample_loop_applies_generates_stopping_criteria(tok):
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    width = enc["input_ids"].shape[1]
    kw = dict(do_sample=False, max_new_tokens=8, min_new_tokens=8, pad_token_id=0)
    own = model.generate(**enc, custom_generate=sample_loop,
                         stopping_criteria=transformers.StoppingCriteriaList(
                             [_StopAtLength(width + 3)]), **kw)
    full = model.generate(**enc, custom_generate=sample_loop, **kw)
    assert own.shape[1] == width + 3 and torch.equal(own, full[:, :width + 3])
    # max_time=0: transformers' MaxTimeCriteria ends every row after the first step.
    timed = model.generate(**enc, custom_generate=sample_loop, max_time=0.0, **kw)
    assert torch.equal(timed, full[:, :width + 1])


def test_criteria_beyond_the_configs_own_are_found_without_generates_tokenizer():
    """A config with stop_strings: the max-length and EOS criteria generate built from it are
    recognised without the tokenizer that rebuilding its StopStringCriteria would need (generate
    keeps it); the other criteria are what the loops run or refuse."""
    from fastsample.integrations.transformers import _added_criteria
    model = llama()
    config = transformers.GenerationConfig(max_length=12, eos_token_id=1, max_time=5.0)
    model._prepare_special_tokens(config, device="cpu")  # as generate does before the loop
    criteria = model._get_stopping_criteria(generation_config=config,
                                            stopping_criteria=transformers.StoppingCriteriaList())
    own = _StopAtLength(9)  # stands in for the StopStringCriteria generate would add
    criteria.append(own)
    config.stop_strings = ["w1"]
    added = _added_criteria(model, criteria, config)
    assert [type(c).__name__ for c in added] == ["MaxTimeCriteria", "_StopAtLength"]
    assert added[1] is own


def test_sample_loop_leaves_max_length_and_eos_to_the_sampler(tok, monkeypatch):
    """generate always hands the loop MaxLengthCriteria and EosTokenCriteria, which the Sampler
    enforces: no per-step criteria call (ids rebuilt on the host) unless another one is given."""
    import fastsample.integrations.transformers as fst
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    stops = []
    real = fst.decode_steps

    def recording(*args, stop=None, **kwargs):
        stops.append(stop)
        return real(*args, stop=stop, **kwargs)

    monkeypatch.setattr(fst, "decode_steps", recording)
    kw = dict(custom_generate=fst.sample_loop, do_sample=False, max_new_tokens=4,
              pad_token_id=0, eos_token_id=1)
    model.generate(**enc, **kw)
    model.generate(**enc, max_time=60.0, **kw)
    own = transformers.StoppingCriteriaList([transformers.MaxLengthCriteria(5)])
    model.generate(**enc, stopping_criteria=own, **kw)
    assert stops[0] is None and stops[1] is not None and stops[2] is not None


def test_sample_loop_refuses_a_processor_it_would_not_run(tok):
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    with pytest.raises(ValueError, match="_Identity .given to generate. would not run"):
        model.generate(**enc, custom_generate=sample_loop, do_sample=True, max_new_tokens=2,
                       pad_token_id=0,
                       logits_processor=transformers.LogitsProcessorList([_Identity()]))
    # The processors transformers builds from the config itself are fastsample's chain.
    model.generate(**enc, custom_generate=sample_loop, do_sample=True, top_k=5, top_p=0.9,
                   repetition_penalty=1.2, max_new_tokens=2, pad_token_id=0)


def test_the_loops_return_what_transformers_returns_for_return_dict_in_generate(tok):
    from fastsample.transformers import beam_search_loop, contrastive_search_loop, sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    cases = [(sample_loop, dict(do_sample=False), "GenerateDecoderOnlyOutput"),
             (beam_search_loop, dict(num_beams=2), "GenerateBeamDecoderOnlyOutput"),
             (contrastive_search_loop, dict(penalty_alpha=0.6, top_k=3),
              "GenerateDecoderOnlyOutput")]
    for loop, fields, kind in cases:
        kw = dict(custom_generate=loop, max_new_tokens=3, pad_token_id=0, **fields)
        plain = model.generate(**enc, **kw)
        out = model.generate(**enc, return_dict_in_generate=True, **kw)
        assert type(out).__name__ == kind and torch.equal(out.sequences, plain)
        with pytest.raises(ValueError, match="output_scores=True is not produced"):
            model.generate(**enc, return_dict_in_generate=True, output_scores=True, **kw)


@pytest.mark.parametrize("loop_name", ["beam_search_loop", "contrastive_search_loop"])
def test_search_loops_refuse_stopping_criteria_they_would_not_apply(tok, loop_name):
    import fastsample.transformers as fst
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    fields = dict(num_beams=2) if loop_name == "beam_search_loop" else dict(penalty_alpha=0.6,
                                                                           top_k=3)
    with pytest.raises(ValueError, match="MaxTimeCriteria"):
        model.generate(**enc, custom_generate=getattr(fst, loop_name), max_new_tokens=3,
                       pad_token_id=0, max_time=5.0, **fields)


def test_a_callers_instance_of_a_built_processor_type_is_refused_too(tok):
    """transformers lets a caller's TopKLogitsWarper(1) replace the one it builds from top_k;
    the loop, which reads top_k from the config, refuses it instead of sampling top-50."""
    from fastsample.transformers import beam_search_loop, sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    with pytest.raises(ValueError, match="TopKLogitsWarper .given to generate. would not run"):
        model.generate(**enc, custom_generate=sample_loop, do_sample=True, top_k=50,
                       max_new_tokens=2, pad_token_id=0,
                       logits_processor=transformers.LogitsProcessorList(
                           [transformers.TopKLogitsWarper(1)]))
    with pytest.raises(ValueError, match="MaxLengthCriteria"):
        model.generate(**enc, custom_generate=beam_search_loop, num_beams=2, max_new_tokens=3,
                       pad_token_id=0, stopping_criteria=transformers.StoppingCriteriaList(
                           [transformers.MaxLengthCriteria(4)]))
