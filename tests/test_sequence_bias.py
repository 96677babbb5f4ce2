"""sequence_bias and multi-token bad_words_ids (transformers' SequenceBiasLogitsProcessor and
NoBadWordsLogitsProcessor, one rule): tiny exact rows, transformers' own processors, the
reference bit for bit on both edited-row paths (the patched path runs this file too:
test_edited_row_paths.py; the CUDA block code draws it in test_cuda_emulation.py), every path
a request takes, and the errors."""
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference

from helpers import assert_kernels_equal_the_reference, random_logits

transformers = pytest.importorskip("transformers")
from transformers.generation.logits_process import (  # noqa: E402
    NoBadWordsLogitsProcessor, SequenceBiasLogitsProcessor)
from fastsample.transformers import FastLogitsProcessor, from_generation_config  # noqa: E402

INF = math.inf


@pytest.mark.parametrize("history, bias, expected", [
    ([5, 3], {(3, 4): 1.0}, {4: 1.0}),                   # "3" ends the history
    ([5, 3], {(5, 4): 1.0}, {}),                         # "5" does not
    ([5, 3], {(5, 3, 4): 2.0, (4,): 0.5}, {4: 2.5}),     # both apply: their sum
    ([5, 3], {(7, 5, 3, 4): 2.0}, {}),                   # a prefix longer than the history
    ([], {(4,): -1.0, (3, 4): 5.0}, {4: -1.0}),          # one token always applies
    ([1, 2], {(2, 6): -INF, (6,): 3.0}, {6: -INF}),      # a ban wins over any bias
    ([1, 2], {(1, 2, 6): -INF}, {6: -INF}),
])
def test_tiny_rows(history, bias, expected):
    x = torch.zeros(1, 10)
    kw = dict(sequence_bias=bias, output_token_ids=[history])
    out = fastsample.process_logits(x, **kw)
    want = torch.zeros(1, 10)
    for t, b in expected.items():
        want[0, t] = b
    assert torch.equal(out, want)
    assert torch.equal(reference.process_logits(x, **kw), want)


def _random_bias(g, alphabet, count, bans=False):
    """Sequences of 1-4 tokens from `alphabet` (many share their last token) with biases of
    mixed magnitudes, so that a different order of adding them up would round differently."""
    bias = {}
    for _ in range(count):
        length = int(torch.randint(1, 5, (1,), generator=g))
        ids = tuple(alphabet[int(i)] for i in torch.randint(0, len(alphabet), (length,),
                                                           generator=g))
        value = float(torch.randn(1, generator=g) * 10.0 ** int(torch.randint(-3, 4, (1,),
                                                                               generator=g)))
        bias[ids] = -INF if bans and length > 1 and int(ids[-1]) % 3 == 0 else value
    return bias


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_transformers_sequence_bias(seed):
    g = torch.Generator().manual_seed(seed)
    alphabet = [0, 1, 2, 3, 250, 299]
    input_ids = torch.tensor(alphabet)[torch.randint(0, 6, (8, 30), generator=g)]
    scores = random_logits(8, 300, seed=seed)
    scores[:, 5] = -INF
    bias = _random_bias(g, alphabet, 40, bans=True)
    want = SequenceBiasLogitsProcessor(sequence_bias=bias)(input_ids, scores.clone())
    got = fastsample.process_logits(scores, sequence_bias=bias, output_token_ids=input_ids)
    assert torch.equal(got, want)
    pairs = [[list(ids), b] for ids, b in bias.items()]  # transformers' JSON form
    assert torch.equal(FastLogitsProcessor(sequence_bias=pairs)(input_ids, scores), want)


def test_equals_transformers_bad_words():
    """NoBadWordsLogitsProcessor drops [eos] and bans the rest, multi-token or not; from_hf reads
    bad_words_ids the same way (single tokens as banned ids, the others as -inf biases)."""
    g = torch.Generator().manual_seed(7)
    input_ids = torch.randint(0, 5, (6, 20), generator=g)
    scores = random_logits(6, 40, seed=3)
    words = [[2], [1, 3], [4, 4, 1], [0, 2, 4, 3], [7]]
    want = NoBadWordsLogitsProcessor(words, eos_token_id=7)(input_ids, scores.clone())
    params = fastsample.from_hf({"do_sample": True, "top_k": 0, "bad_words_ids": words,
                                 "eos_token_id": 7})
    assert params.banned_token_ids == (2,)
    assert FastLogitsProcessor.from_params(params)(input_ids, scores).equal(want)


COMBOS = [
    dict(sequence_bias={(1, 2): 3.0, (2,): -1.5, (3, 1, 2): -INF, (4,): 0.25}),
    dict(sequence_bias=[{(1, 2): 3.0}, None, {(5,): -2.0, (2, 5): 1.0}, {}, {(0, 1): -INF}],
         temperature=0.8, top_k=6),
    dict(sequence_bias={(3, 3): 2.0, (0,): 4.0}, logit_bias={0: -1.0, 3: 1.0},
         no_repeat_ngram_size=3, repetition_penalty=1.2, top_p=0.9),
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_kernels_equal_the_reference(combo, dtype):
    g = torch.Generator().manual_seed(5)
    x = random_logits(5, 500, dtype=dtype, special=True)
    output = torch.randint(0, 6, (5, 40), generator=g)
    output[1, 10:20] = -1
    assert_kernels_equal_the_reference(x, dict(combo, prompt_token_ids=[[1, 2, 3]] * 5,
                                               output_token_ids=output))


def test_sampler_never_completes_a_banned_phrase():
    """Logits that always favour 2 after 1: with the phrase [1, 2] banned (as a bad word), a
    sampled run never holds it, and the bias row follows each step's history."""
    V = 8
    sampler = fastsample.Sampler(V)
    sampler.add("r", SamplingParams(seed=3, sequence_bias={(1, 2): -INF}, max_tokens=60), [1])
    history = [1]
    for _ in range(60):
        x = torch.zeros(1, V)
        x[0, (history[-1] + 1) % 3] = 3.0  # the cycle 0 1 2 0 1 2 ...
        out = sampler.step(x)
        history.append(out[0].token)
    assert all((a, b) != (1, 2) for a, b in zip(history, history[1:]))
    assert history.count(1) > 5


@pytest.mark.parametrize("field", ["bad_words_ids", "sequence_bias"])
def test_generate_equals_transformers_greedy(field):
    from fastsample.transformers import sample_loop
    from tiny_models import llama
    model = llama()
    input_ids = torch.tensor([[5, 9, 5, 9, 5, 17, 3]])
    plain = model.generate(input_ids, do_sample=False, max_new_tokens=10, pad_token_id=0)
    a, b = plain[0, 8].item(), plain[0, 9].item()  # a phrase the plain run produces
    value = [[a, b], [9, 5]] if field == "bad_words_ids" else [[[a, b], -30.0], [[3], 2.0]]
    kw = dict(do_sample=False, max_new_tokens=10, pad_token_id=0, **{field: value})
    want = model.generate(input_ids, **kw)
    assert not torch.equal(want, plain)
    assert torch.equal(model.generate(input_ids, custom_generate=sample_loop, **kw), want)
    config = transformers.GenerationConfig(do_sample=True, top_k=0, **{field: value})
    proc = from_generation_config(config)
    scores = torch.randn(1, 300)
    ref = (SequenceBiasLogitsProcessor(sequence_bias=value) if field == "sequence_bias"
           else NoBadWordsLogitsProcessor(value))
    assert torch.equal(proc(plain, scores), ref(plain, scores.clone()))


@pytest.mark.parametrize("value, error, match", [
    ({(1, 2): math.nan}, ValueError, "bias nan"),
    ({(1,): INF}, ValueError, "bias inf"),
    ({(1,): 1e39}, ValueError, "bias 1e"),
    ({(): 1.0}, TypeError, "non-empty"),
    ({(1, -2): 1.0}, ValueError, "out of range"),
    ({(1, 2.5): 1.0}, TypeError, "sequence_bias"),
    ({(1, 2): "x"}, ValueError, "bias 'x'"),
    (3, TypeError, "sequence_bias must be a dict"),
    ([[1, 2]], TypeError, "sequence"),
])
def test_bad_values_are_rejected(value, error, match):
    with pytest.raises(error, match=match):
        fastsample.sample(torch.zeros(2, 10), sequence_bias=value)
    with pytest.raises(error, match=match):
        SamplingParams(sequence_bias=value)


def test_ids_past_the_vocabulary_are_rejected():
    with pytest.raises(ValueError, match="holds 12, out of range"):
        fastsample.process_logits(torch.zeros(1, 10), sequence_bias={(1, 12): 1.0})
    with pytest.raises(ValueError, match="holds 12, out of range"):
        fastsample.Sampler(10).add("r", SamplingParams(sequence_bias={(3, 12): 1.0}))


def test_unordered_output_is_rejected_for_long_sequences():
    kw = dict(output_token_ids=[[1, 2]], output_token_counts=[[1, 3]], frequency_penalty=0.5)
    with pytest.raises(ValueError, match="sequence_bias with sequences of two or more ids"):
        fastsample.sample(torch.zeros(1, 10), sequence_bias={(1, 2): 1.0}, **kw)
    # One-token sequences read no order: they run beside counts.
    out = fastsample.process_logits(torch.zeros(1, 10), sequence_bias={(4,): 1.0}, **kw)
    assert out[0, 4] == 1.0


def test_from_hf_reads_both_fields():
    p = fastsample.from_hf({"sequence_bias": [[[1, 2], -2.0]], "bad_words_ids": [[1, 2], [4]],
                            "eos_token_id": 4})
    assert p.sequence_bias == (((1, 2), -INF),) and p.banned_token_ids is None
    with pytest.raises(ValueError, match=r"bad_words_ids\[0\]=\[\]"):
        fastsample.from_hf({"bad_words_ids": [[]]})
    with pytest.raises(ValueError, match="GenerationConfig: sequence_bias"):
        fastsample.from_hf({"sequence_bias": [[[1], math.nan]]})
