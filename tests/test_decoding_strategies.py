"""Decoding strategies run by fastsample.generate and the transformers loops: beam search
against transformers' own generate(num_beams=...), n samples per prompt against n separate
seeded requests, best_of's choice, and the refusals of the per-step paths."""
import dataclasses
import re

import pytest
import torch

import fastsample
from fastsample import Sampler, SamplingBatch, SamplingParams

transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
from tiny_models import gpt2, llama, tokenizer  # noqa: E402

PROMPTS = ["w1 w2 w3 w4", "w5 w6", "w7 w8 w9 w10 w11 w12"]
EOS = 1  # the tiny models' <eos>


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _assert_beams_equal(got, want, prompt_width, n, fill):
    """Each prompt's n completions are transformers' rows i*n .. i*n+n-1 (best first), whose
    tail past the completion is padding."""
    for i, res in enumerate(got):
        assert len(res.completions) == n
        for j, c in enumerate(res.completions):
            row = want.sequences[i * n + j, prompt_width:].tolist()
            assert row[:len(c.token_ids)] == c.token_ids, (i, j)
            assert all(t == fill for t in row[len(c.token_ids):]), (i, j, row)
            # sequences_scores: the length-penalized sum of the beam's logprobs.
            assert c.score == pytest.approx(float(want.sequences_scores[i * n + j]), abs=1e-4)


@pytest.mark.parametrize("make", [llama, gpt2], ids=["llama", "gpt2"])
@pytest.mark.parametrize("beams,n,eos,length_penalty,early_stopping", [
    (2, 1, None, 1.0, False),          # no EOS: every beam runs to max_new_tokens
    (3, 2, [EOS], 1.0, False),
    (4, 4, [EOS], 0.5, True),
    (3, 3, [EOS, 5, 7], 2.0, "never"),  # K = 4 x 3: several finishing ids
    (2, 2, [EOS], -1.0, False),
])
def test_beam_search_equals_transformers(make, tok, beams, n, eos, length_penalty,
                                         early_stopping):
    model = make()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    want = model.generate(**enc, do_sample=False, num_beams=beams, num_return_sequences=n,
                          max_new_tokens=10, pad_token_id=0, eos_token_id=eos,
                          length_penalty=length_penalty, early_stopping=early_stopping,
                          output_scores=True, return_dict_in_generate=True)
    params = SamplingParams(temperature=0.0, num_beams=beams, n=n, max_tokens=10,
                            length_penalty=length_penalty, early_stopping=early_stopping,
                            eos_token_ids=eos or [])
    got = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    # transformers pads finished beams with the first EOS id when the pad id is 0.
    _assert_beams_equal(got, want, enc["input_ids"].shape[1], n, eos[0] if eos else 0)
    if eos:
        if make is llama:  # its beams do end on EOS here: the finished-beam path is exercised
            assert any(c.finish_reason == "eos" for r in got for c in r.completions)
        for r in got:
            for c in r.completions:
                assert (c.finish_reason == "eos") == (c.token_ids[-1] in eos)
                shown = c.token_ids[:-1] if c.finish_reason == "eos" else c.token_ids
                assert c.text == tok.decode(shown, skip_special_tokens=True)


def test_beam_search_past_the_fused_top_n_equals_transformers(tok):
    """num_beams 11 with one EOS id keeps K = 22 candidates per beam, more than the kernels'
    fused top-20: the processed logits' torch.topk does it, with the same result."""
    from fastsample.decode.beam_search import candidates_per_prompt
    from fastsample.decode.candidates import FUSED_TOP
    assert candidates_per_prompt(11, 1) > FUSED_TOP
    model = llama()
    enc = tok(PROMPTS[:2], return_tensors="pt", padding=True, padding_side="left")
    want = model.generate(**enc, do_sample=False, num_beams=11, num_return_sequences=3,
                          max_new_tokens=6, pad_token_id=0, eos_token_id=EOS,
                          output_scores=True, return_dict_in_generate=True)
    got = fastsample.generate(model, PROMPTS[:2], SamplingParams(
        temperature=0.0, num_beams=11, n=3, max_tokens=6, eos_token_ids=[EOS]), tokenizer=tok)
    _assert_beams_equal(got, want, enc["input_ids"].shape[1], 3, EOS)


def test_beam_search_applies_stages_1_to_3_per_beam(tok):
    """Masks, n-gram bans, sequence biases and min_tokens act on each beam's own history.
    fastsample scores a beam by its processed (renormalized) log-probabilities, which is
    transformers' beam search with renormalize_logits=True when the processors only add to
    the scores or mask them."""
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    common = dict(max_new_tokens=10, min_new_tokens=4, no_repeat_ngram_size=2,
                  suppress_tokens=[95, 106], sequence_bias={(73, 51): -3.0, (8,): 2.0},
                  eos_token_id=EOS)
    want = model.generate(**enc, do_sample=False, num_beams=3, num_return_sequences=2,
                          pad_token_id=0, renormalize_logits=True, output_scores=True,
                          return_dict_in_generate=True, **common)
    params = fastsample.from_hf(transformers.GenerationConfig(num_beams=3,
                                                              num_return_sequences=2, **common))
    assert (params.num_beams, params.n, params.min_tokens) == (3, 2, 4)
    got = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    _assert_beams_equal(got, want, enc["input_ids"].shape[1], 2, EOS)
    plain = fastsample.generate(model, PROMPTS, SamplingParams(
        temperature=0.0, num_beams=3, n=2, max_tokens=10, eos_token_ids=[EOS]), tokenizer=tok)
    assert [c.token_ids for r in got for c in r.completions] != \
        [c.token_ids for r in plain for c in r.completions]
    for r in got:
        for c in r.completions:
            assert not {95, 106} & set(c.token_ids)
            assert EOS not in c.token_ids[:4]
            pairs = list(zip(c.token_ids, c.token_ids[1:]))
            assert len(pairs) == len(set(pairs))


def test_beam_search_with_temperature_and_filters_scores_the_processed_distribution(tok):
    """A sampled request's beams score its processed logprobs: z / T over the filters'
    keep-set, renormalized. Every token of a beam is in its step's top-k, and the beam's score
    is the sum of those logprobs along it over its length (length_penalty 1)."""
    model = llama()
    got = fastsample.generate(model, PROMPTS, SamplingParams(
        temperature=0.7, top_k=3, num_beams=2, n=2, max_tokens=8, ignore_eos=True),
        tokenizer=tok)
    plain = fastsample.generate(model, PROMPTS, SamplingParams(
        temperature=0.0, num_beams=2, n=2, max_tokens=8, ignore_eos=True), tokenizer=tok)
    assert [c.score for r in got for c in r.completions] != \
        pytest.approx([c.score for r in plain for c in r.completions])
    for prompt, res in zip(PROMPTS, got):
        for c in res.completions:
            ids = tok(prompt)["input_ids"] + c.token_ids
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -9:-1].double()
            z = logits / 0.7
            kth = torch.topk(z, 3, dim=-1).values[:, -1:]
            z = torch.where(z >= kth, z, torch.full_like(z, -float("inf")))
            lp = torch.log_softmax(z, -1).gather(1, torch.tensor(c.token_ids)[:, None])
            assert torch.isfinite(lp).all()
            assert c.score == pytest.approx(float(lp.sum()) / 8, abs=1e-4)


@pytest.mark.parametrize("beams,n", [(3, 2), (2, 1)])
def test_beam_search_loop_is_a_custom_generate(tok, beams, n):
    from fastsample.transformers import beam_search_loop
    model = llama()
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    kw = dict(do_sample=False, num_beams=beams, num_return_sequences=n, max_new_tokens=8,
              pad_token_id=0, eos_token_id=EOS)
    want = model.generate(**enc, **kw)
    got = model.generate(**enc, **kw, custom_generate=beam_search_loop)
    assert torch.equal(got, want)


def test_n_samples_are_n_requests_seeded_seed_plus_j(tok):
    """Sequence j of a request with seed s is the request with seed s + j (vLLM's rule), token
    for token, from one prefill per prompt."""
    model = llama()
    params = SamplingParams(temperature=0.9, top_p=0.95, seed=41, n=3, max_tokens=8,
                            ignore_eos=True)
    forwards = []
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kw: forwards.append(kw["input_ids"].shape), with_kwargs=True)
    try:
        got = fastsample.generate(model, PROMPTS[:2], params, tokenizer=tok)
    finally:
        hook.remove()
    assert forwards[0][0] == 2 and all(shape == (6, 1) for shape in forwards[1:])
    for i, res in enumerate(got):
        singles = fastsample.generate(model, [PROMPTS[i]] * 3, [
            dataclasses.replace(params, n=1, seed=41 + j) for j in range(3)], tokenizer=tok)
        assert [c.token_ids for c in res.completions] == [r.token_ids for r in singles]
        assert res.token_ids == singles[0].token_ids
    assert len({tuple(c.token_ids) for c in got[0].completions}) == 3


def test_unseeded_n_samples_are_independent_draws(tok):
    """Without a seed each of the n sequences draws its own from the generator: two runs with
    the same generator seed agree, and the n sequences differ."""
    model = llama()
    params = SamplingParams(n=4, max_tokens=6, ignore_eos=True)
    a = fastsample.generate(model, PROMPTS[:1], params, tokenizer=tok,
                            generator=torch.Generator().manual_seed(3))
    b = fastsample.generate(model, PROMPTS[:1], params, tokenizer=tok,
                            generator=torch.Generator().manual_seed(3))
    assert [c.token_ids for c in a[0].completions] == [c.token_ids for c in b[0].completions]
    assert len({tuple(c.token_ids) for c in a[0].completions}) == 4


def test_best_of_keeps_the_n_best_by_mean_logprob(tok):
    model = llama()
    params = SamplingParams(temperature=1.0, seed=7, n=2, best_of=5, max_tokens=6)
    got = fastsample.generate(model, PROMPTS[:1], params, tokenizer=tok)[0]
    pool = fastsample.generate(model, PROMPTS[:1] * 5, [
        SamplingParams(temperature=1.0, seed=7 + j, max_tokens=6, logprobs=0)
        for j in range(5)], tokenizer=tok)
    means = [sum(lp for lp, _, _ in r.logprobs) / len(r.logprobs) for r in pool]
    order = sorted(range(5), key=lambda j: -means[j])[:2]
    assert [c.token_ids for c in got.completions] == [pool[j].token_ids for j in order]
    assert [c.score for c in got.completions] == pytest.approx([means[j] for j in order])
    assert all(c.logprobs is None for c in got.completions)  # not asked for
    asked = fastsample.generate(model, PROMPTS[:1], dataclasses.replace(params, logprobs=1),
                                tokenizer=tok)[0]
    assert [len(c.logprobs) for c in asked.completions] == \
        [len(c.token_ids) for c in asked.completions]


def test_sample_loop_runs_num_return_sequences(tok):
    """transformers repeats each prompt num_return_sequences times before a custom_generate
    loop: copy j is seeded seed + j, as fastsample.generate's n samples."""
    from fastsample.transformers import sample_loop
    model = llama()
    enc = tok(PROMPTS[:2], return_tensors="pt", padding=True, padding_side="left")
    config = transformers.GenerationConfig(do_sample=True, num_return_sequences=3, seed=7,
                                           top_k=0, max_new_tokens=6, min_new_tokens=6,
                                           pad_token_id=0)
    got = model.generate(**enc, generation_config=config, custom_generate=sample_loop)
    want = fastsample.generate(model, PROMPTS[:2], SamplingParams(
        seed=7, n=3, max_tokens=6, min_tokens=6), tokenizer=tok)
    width = enc["input_ids"].shape[1]
    assert got[:, width:].tolist() == [c.token_ids for r in want for c in r.completions]


def test_stream_yields_each_sequence(tok):
    model = llama()
    params = SamplingParams(seed=3, n=2, max_tokens=4, ignore_eos=True)
    events = list(fastsample.generate(model, PROMPTS[:2], params, tokenizer=tok, stream=True))
    got = fastsample.generate(model, PROMPTS[:2], params, tokenizer=tok)
    for i in range(2):
        for j in range(2):
            assert [e.output.token for e in events if (e.index, e.sequence) == (i, j)] == \
                got[i].completions[j].token_ids


@pytest.mark.parametrize("fields,message", [
    (dict(n=0), "n=0 is out of range; allowed: an integer in [1, 65536]"),
    (dict(n=3, best_of=2), "best_of=2 is out of range; allowed: n (3) <= best_of"),
    (dict(num_beams=2, n=3), "n=3 is out of range with num_beams=2"),
    (dict(num_beams=2, best_of=2), "best_of=2 with num_beams=2"),
    (dict(num_beams=2, logprobs=1), "beam search does not run logprobs"),
    (dict(num_beams=2, stop=["x"]), "beam search does not run stop"),
    (dict(num_beams=2, mirostat=2), "beam search does not run mirostat"),
    (dict(num_beams=2, structured_output={"kind": "regex", "value": "a"}),
     "beam search does not run structured_output"),
    (dict(num_beams=2, early_stopping="always"), "early_stopping='always' is not allowed"),
    (dict(num_beams=2, early_stopping=1), "early_stopping=1 is not allowed"),
    (dict(length_penalty=0.5), "length_penalty=0.5 only change beam search"),
    (dict(num_beams=2, length_penalty=float("inf")), "length_penalty=inf is out of range"),
])
def test_strategy_fields_are_validated(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SamplingParams(**fields)


@pytest.mark.parametrize("fields", [dict(n=2), dict(best_of=2), dict(num_beams=2)])
def test_per_step_paths_refuse_a_strategy(fields):
    from fastsample.transformers import FastLogitsProcessor
    p = SamplingParams(temperature=0.0, **fields)
    name = next(iter(fields))
    with pytest.raises(ValueError, match=f"request 'r': Sampler decodes one sequence per "
                                         f"request, step by step: {name}=2"):
        Sampler(16).add("r", p)
    with pytest.raises(ValueError, match=f"params\\[0\\]: SamplingBatch decodes .*{name}=2"):
        SamplingBatch([p])
    with pytest.raises(ValueError, match=f"FastLogitsProcessor decodes .*{name}=2"):
        FastLogitsProcessor.from_params(p)


def test_generate_refuses_streaming_what_is_chosen_at_the_end(tok):
    model = llama()
    for fields, name in ((dict(num_beams=2, temperature=0.0), "num_beams"),
                         (dict(n=1, best_of=2), "best_of")):
        with pytest.raises(ValueError, match=f"stream=True cannot run {name}"):
            fastsample.generate(model, PROMPTS[:1], SamplingParams(**fields), tokenizer=tok,
                                stream=True)


def test_beam_search_loop_refuses_what_it_cannot_run(tok):
    from fastsample.transformers import beam_search_loop, sample_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    with pytest.raises(ValueError, match="beam_search_loop cannot run num_beams=2 with "
                                         "do_sample=True"):
        model.generate(**enc, do_sample=True, num_beams=2, max_new_tokens=3, pad_token_id=0,
                       custom_generate=beam_search_loop)
    with pytest.raises(ValueError, match="sample_loop samples: num_beams=2 is beam search"):
        model.generate(**enc, num_beams=2, max_new_tokens=3, pad_token_id=0,
                       custom_generate=sample_loop)


def test_fork_copies_rows_for_beams():
    """SamplingBatch.fork takes rows with repeats: the copies carry their parent's history
    (the penalties read it); keep still refuses a repeated row."""
    p = SamplingParams(repetition_penalty=2.0)
    batch = SamplingBatch([p, p], prompt_token_ids=[[1], [2]])
    batch.advance(torch.tensor([3, 4]))
    batch.fork([1, 1, 0])
    logits = torch.ones(3, 6)
    out = fastsample.process_logits(logits, **batch.kwargs(draw=False))
    penalized = (out < 1).nonzero().tolist()
    assert penalized == [[0, 2], [0, 4], [1, 2], [1, 4], [2, 1], [2, 3]]
    with pytest.raises(ValueError, match="name a row twice"):
        batch.keep([0, 0])


# -- contrastive search ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [llama, gpt2], ids=["llama", "gpt2"])
@pytest.mark.parametrize("alpha,k", [(0.6, 4), (0.3, 7), (1.0, 2)])
def test_contrastive_search_equals_the_plain_torch_search(make, tok, alpha, k):
    """fastsample's batched search (left padding, the KV cache repeated and selected in place,
    candidates from the fused call, scores from contrastive_scores) equals transformers 4.x's
    algorithm run one prompt at a time in plain torch, and differs from greedy."""
    from fastsample.reference.contrastive import contrastive_search
    model = make()
    params = SamplingParams(temperature=0.0, top_k=k, penalty_alpha=alpha, max_tokens=12,
                            eos_token_ids=[EOS])
    got = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    greedy = fastsample.generate(model, PROMPTS, SamplingParams(temperature=0.0, max_tokens=12,
                                                                eos_token_ids=[EOS]),
                                 tokenizer=tok)
    for prompt, res in zip(PROMPTS, got):
        want = contrastive_search(model, tok(prompt)["input_ids"], alpha, k, 12, [EOS])
        assert res.token_ids == want
        assert res.finish_reason == ("eos" if want[-1] == EOS else "length")
    assert [r.token_ids for r in got] != [r.token_ids for r in greedy]


def test_contrastive_search_applies_stages_1_to_3(tok):
    """transformers' processors run before the softmax of contrastive search: here its own
    RepetitionPenaltyLogitsProcessor and SuppressTokensLogitsProcessor in the plain-torch
    search, fastsample's repetition_penalty and banned ids in the fused one."""
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                              SuppressTokensLogitsProcessor)
    from fastsample.reference.contrastive import contrastive_search
    model = llama()
    chain = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(1.5),
                                 SuppressTokensLogitsProcessor([95, 104])])
    params = SamplingParams(temperature=0.0, top_k=4, penalty_alpha=0.6, max_tokens=12,
                            repetition_penalty=1.5, banned_token_ids=[95, 104], ignore_eos=True)
    got = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    for prompt, res in zip(PROMPTS, got):
        want = contrastive_search(model, tok(prompt)["input_ids"], 0.6, 4, 12, (), chain)
        assert res.token_ids == want
        assert not {95, 104} & set(res.token_ids)


def test_contrastive_search_loop_and_xturing_config(tok):
    """xTuring's default generation config (penalty_alpha 0.6, top_k 4, do_sample false) is
    contrastive search in from_hf, and contrastive_search_loop runs it inside transformers'
    generate with generate's results."""
    from fastsample.transformers import contrastive_search_loop, sample_loop
    model = llama()
    config = transformers.GenerationConfig(penalty_alpha=0.6, top_k=4, do_sample=False,
                                           max_new_tokens=10, pad_token_id=0, eos_token_id=EOS)
    params = fastsample.from_hf(config)
    assert (params.penalty_alpha, params.top_k, params.temperature) == (0.6, 4, 0.0)
    enc = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    got = model.generate(**enc, generation_config=config,
                         custom_generate=contrastive_search_loop)
    want = fastsample.generate(model, PROMPTS, params, tokenizer=tok)
    width = enc["input_ids"].shape[1]
    for i, res in enumerate(want):
        row = got[i, width:].tolist()
        assert row[:len(res.token_ids)] == res.token_ids
        assert all(t == 0 for t in row[len(res.token_ids):])
    with pytest.raises(ValueError, match="use custom_generate=fastsample.transformers."
                                         "contrastive_search_loop"):
        model.generate(**enc, generation_config=config, custom_generate=sample_loop)
    with pytest.raises(ValueError, match="contrastive_search_loop needs penalty_alpha > 0"):
        model.generate(**enc, max_new_tokens=3, pad_token_id=0,
                       custom_generate=contrastive_search_loop)


def test_contrastive_hf_fields_follow_transformers_modes():
    """transformers runs contrastive search only with do_sample false, one beam and top_k > 1;
    elsewhere it ignores penalty_alpha, which from_hf then keeps in metadata."""
    for config in ({"penalty_alpha": 0.6, "top_k": 4, "do_sample": True},
                   {"penalty_alpha": 0.6, "top_k": 1},
                   {"penalty_alpha": 0.6, "num_beams": 2}):
        p = fastsample.from_hf(config)
        assert p.penalty_alpha == 0.0 and p.metadata["penalty_alpha"] == 0.6
    assert fastsample.from_hf({"penalty_alpha": 0.6}).top_k == 50  # transformers' default
    with pytest.raises(ValueError, match="penalty_alpha=1.5 is out of range"):
        fastsample.from_hf({"penalty_alpha": 1.5, "top_k": 4})


@pytest.mark.parametrize("fields,message", [
    (dict(penalty_alpha=0.6, top_k=4), "contrastive search chooses deterministically; it "
                                       "needs temperature 0"),
    (dict(temperature=0.0, penalty_alpha=0.6), "it needs top_k in [2, 64] (got 0"),
    (dict(temperature=0.0, top_k=65, penalty_alpha=0.6), "it needs top_k in [2, 64] (got 65"),
    (dict(temperature=0.0, top_k=4, penalty_alpha=0.6, n=2), "returns one sequence; unset n=2"),
    (dict(temperature=0.0, top_k=4, penalty_alpha=0.6, num_beams=2),
     "returns one sequence; unset num_beams=2"),
    (dict(temperature=0.0, top_k=4, penalty_alpha=0.6, logprobs=0),
     "contrastive search does not run logprobs"),
    (dict(temperature=0.0, top_k=4, penalty_alpha=-0.1), "penalty_alpha=-0.1 is out of range"),
])
def test_contrastive_fields_are_validated(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SamplingParams(**fields)


def test_more_candidates_than_tokens(tok):
    """K past V: beam search with 11 beams (K = 22) over V = 8 equals transformers; contrastive
    search with top_k 30 over V = 8 ranks the 8 tokens there are."""
    model = llama(vocab=8)
    prompts = [[3, 4, 5], [6, 7]]
    input_ids = torch.tensor([[0, 3, 4, 5], [0, 0, 6, 7]])
    mask = (torch.arange(4)[None, :] >= torch.tensor([[1], [2]])).long()
    want = model.generate(input_ids=input_ids, attention_mask=mask, do_sample=False,
                          num_beams=11, num_return_sequences=2, max_new_tokens=4,
                          pad_token_id=0, eos_token_id=None, output_scores=True,
                          return_dict_in_generate=True)
    got = fastsample.generate(model, prompts, SamplingParams(
        temperature=0.0, num_beams=11, n=2, max_tokens=4, eos_token_ids=[]))
    _assert_beams_equal(got, want, 4, 2, 0)
    out = fastsample.generate(model, prompts, SamplingParams(
        temperature=0.0, top_k=30, penalty_alpha=0.5, max_tokens=5, ignore_eos=True))
    assert all(len(r.token_ids) == 5 and max(r.token_ids) < 8 for r in out)


def test_searches_refuse_a_prompt_without_a_valid_token(tok):
    model = llama()
    for fields in (dict(num_beams=2, n=2), dict(top_k=4, penalty_alpha=0.6)):
        params = SamplingParams(temperature=0.0, max_tokens=3, allowed_token_ids=[EOS],
                                eos_token_ids=[EOS], min_tokens=2, **fields)
        with pytest.raises(ValueError, match=r"prompts \[0\] have no valid token"):
            fastsample.generate(model, PROMPTS[:1], params, tokenizer=tok)


def test_best_of_equal_to_n_is_n_samples(tok):
    """best_of = n draws what n alone does (OpenAI's best_of=1 default included): every path
    accepts it, nothing is ranked."""
    model = llama()
    a = fastsample.generate(model, PROMPTS[:1], SamplingParams(seed=2, n=2, best_of=2,
                                                               max_tokens=5), tokenizer=tok)
    b = fastsample.generate(model, PROMPTS[:1], SamplingParams(seed=2, n=2, max_tokens=5),
                            tokenizer=tok)
    assert [c.token_ids for c in a[0].completions] == [c.token_ids for c in b[0].completions]
    assert a[0].score is None
    one = fastsample.from_openai({"model": "m", "best_of": 1, "n": 1})
    Sampler(16).add("r", one)
    SamplingBatch([one])


def test_beam_search_length_penalty_extremes(tok):
    """A length penalty whose power overflows float64 does not crash (every finished score
    rounds to 0 then)."""
    model = llama()
    got = fastsample.generate(model, PROMPTS[:1], SamplingParams(
        temperature=0.0, num_beams=2, length_penalty=2000.0, max_tokens=4, eos_token_ids=[EOS]),
        tokenizer=tok)
    assert len(got[0].token_ids) >= 1


def test_beam_search_loop_needs_beams(tok):
    from fastsample.transformers import beam_search_loop
    model = llama()
    enc = tok(PROMPTS[:1], return_tensors="pt")
    with pytest.raises(ValueError, match="beam_search_loop runs beam search: num_beams=1"):
        model.generate(**enc, do_sample=True, max_new_tokens=3, pad_token_id=0,
                       custom_generate=beam_search_loop)


def test_hf_greedy_num_return_sequences_is_refused():
    with pytest.raises(ValueError, match="num_return_sequences=3 with do_sample=False and one "
                                         "beam would return 3 identical sequences"):
        fastsample.from_hf({"num_return_sequences": 3})
