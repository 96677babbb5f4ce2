"""no_repeat_ngram_size (transformers' NoRepeatNGramLogitsProcessor): tiny exact histories,
transformers' own processor, the reference bit for bit on both edited-row paths (the patched
path runs this file too: test_edited_row_paths.py; the CUDA block code draws it in
test_cuda_emulation.py), every path a request takes, and the errors."""
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference
from fastsample.reference import contract
from fastsample.transformers import FastLogitsProcessor, from_generation_config

from helpers import assert_kernels_equal_the_reference, random_logits

transformers = pytest.importorskip("transformers")
from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor  # noqa: E402


def masked(out, row=0):
    return (out[row] == -math.inf).nonzero().flatten().tolist()


@pytest.mark.parametrize("prompt, output, n, expected", [
    ([1, 2, 3, 1, 2], [3, 1, 2], 2, [3]),       # "2" was followed by 3 (twice)
    ([1, 2, 3, 1, 2], [3, 1, 2], 3, [3]),       # "1 2" -> 3
    ([1, 2, 3, 1, 2], [3, 1, 2], 4, [3]),       # "3 1 2" -> 3
    ([1, 2, 3, 1, 2], [3, 1, 2], 8, []),        # the one 8-gram does not start as it ends
    ([1, 2, 3, 1, 2], [3, 1, 2], 9, []),        # no 9-gram in 8 tokens
    ([1, 2, 1, 2], [1, 2], 5, [1]),             # "1 2 1 2" -> 1
    ([5, 5, 5], [5], 2, [5]),
    ([4, 6, 7], [], 1, [4, 6, 7]),              # n = 1: every token of the history
    ([4, 6, 7], [4, 6], 2, [7]),                # prompt and output are one sequence
    ([], [4, 6, 4], 2, [6]),
    ([7], [], 2, []),                           # one token holds no bigram
    ([1, 2], [1, 2], 0, []),                    # off
])
def test_tiny_histories(prompt, output, n, expected):
    x = torch.zeros(1, 10)
    kw = dict(no_repeat_ngram_size=n, prompt_token_ids=[prompt], output_token_ids=[output])
    out = fastsample.process_logits(x, **kw)
    assert masked(out) == expected
    assert torch.equal(out, reference.process_logits(x, **kw))
    assert masked(reference.process_logits(x, **kw)) == expected


def test_padding_anywhere_is_skipped():
    """-1 entries inside a row's list are padding: the history is its ids in order."""
    x = torch.zeros(2, 10)
    prompt = torch.tensor([[1, -1, 2, -1, -1, 3, 1], [-1, -1, -1, -1, 4, 5, -1]])
    output = torch.tensor([[-1, 2], [4, -1]])
    out = fastsample.process_logits(x, no_repeat_ngram_size=2, prompt_token_ids=prompt,
                                    output_token_ids=output)
    assert masked(out, 0) == [3] and masked(out, 1) == [5]  # 1 2 3 1 2 | 4 5 4


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_transformers_processor(n, seed):
    """input_ids from a 6-token alphabet (many repeats) over V = 300, with -inf and tied logits:
    the scores equal transformers' processor's, also as FastLogitsProcessor."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 6, (8, 40), generator=g)
    input_ids[::2] += 294  # the other rows' alphabet sits at the vocabulary's end
    scores = random_logits(8, 300, seed=seed, special=True)
    scores[:, 10:20] = 1.5
    scores = torch.nan_to_num(scores, nan=-math.inf)  # transformers keeps a NaN as NaN
    want = NoRepeatNGramLogitsProcessor(n)(input_ids, scores.clone())
    got = fastsample.process_logits(scores, no_repeat_ngram_size=n, output_token_ids=input_ids)
    assert torch.equal(got, torch.where(want == math.inf, torch.finfo(torch.float32).max, want))
    proc = FastLogitsProcessor(no_repeat_ngram_size=n)
    assert torch.equal(proc(input_ids, scores), got)


COMBOS = [
    dict(no_repeat_ngram_size=2),
    dict(no_repeat_ngram_size=[1, 2, 3, 0, 5], temperature=0.7, top_k=5),
    dict(no_repeat_ngram_size=3, repetition_penalty=1.3, frequency_penalty=0.4, top_p=0.8),
    dict(no_repeat_ngram_size=torch.tensor([2, 2, 0, 4, 1]), logit_bias={3: 2.0},
         banned_token_ids=[4], min_p=0.1),
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernels_equal_the_reference(combo, dtype):
    """With long histories of few tokens (many bans), penalties, bias and masks beside them, and
    both logprob modes (raw logprobs correct the row's mass over the bans)."""
    g = torch.Generator().manual_seed(4)
    x = random_logits(5, 700, dtype=dtype, special=True)
    prompt = torch.randint(0, 12, (5, 300), generator=g)
    prompt[1, 100:200] = -1
    output = torch.randint(0, 12, (5, 50), generator=g)
    output[2, 30:] = -1
    assert_kernels_equal_the_reference(x, dict(combo, prompt_token_ids=prompt,
                                               output_token_ids=output))


def test_sampler_never_repeats_an_ngram():
    """A greedy Sampler over logits that favour a short cycle: with no_repeat_ngram_size 3 no
    trigram of prompt + output comes twice, and the run equals the reference's rule step by
    step."""
    V = 12
    sampler = fastsample.Sampler(V)
    prompt = [1, 2, 3]
    sampler.add("r", SamplingParams(temperature=0.0, no_repeat_ngram_size=3, max_tokens=30),
                prompt)
    history = list(prompt)
    for step in range(30):
        x = -0.1 * torch.arange(V, dtype=torch.float32)[None]
        x[0, (history[-1] + 1) % 4] += 5.0  # the cycle 0 1 2 3 0 1 ...
        banned = contract.repeated_ngram_ends(history, 3)
        want = max((t for t in range(V) if t not in banned), key=lambda t: (x[0, t], -t))
        out = sampler.step(x)
        assert out[0].token == want
        history.append(want)
        if out[0].finished:
            break
    trigrams = [tuple(history[i:i + 3]) for i in range(len(history) - 2)]
    assert len(trigrams) == len(set(trigrams))


@pytest.mark.parametrize("n", [1, 2])
def test_generate_equals_transformers_greedy(n):
    """transformers' greedy generate with no_repeat_ngram_size, and fastsample's decode loop
    (custom_generate) on the same model and config, give the same tokens."""
    from fastsample.transformers import sample_loop
    from tiny_models import llama
    model = llama()
    input_ids = torch.tensor([[5, 9, 5, 9, 5, 17, 3]])
    kw = dict(do_sample=False, max_new_tokens=12, no_repeat_ngram_size=n, pad_token_id=0)
    want = model.generate(input_ids, **kw)
    got = model.generate(input_ids, custom_generate=sample_loop, **kw)
    assert torch.equal(got, want)
    if n == 1:  # the plain run repeats a token: the rule changed this one
        plain = model.generate(input_ids, do_sample=False, max_new_tokens=12, pad_token_id=0)
        assert not torch.equal(plain, want)


def test_adapters_read_it():
    assert fastsample.from_hf({"no_repeat_ngram_size": 3}).no_repeat_ngram_size == 3
    assert fastsample.from_hf({"do_sample": True, "no_repeat_ngram_size": 2,
                               "top_k": 0}).no_repeat_ngram_size == 2
    assert fastsample.from_openai({"no_repeat_ngram_size": 4}).no_repeat_ngram_size == 4
    cfg = transformers.GenerationConfig(do_sample=True, no_repeat_ngram_size=2)
    assert from_generation_config(cfg).params.no_repeat_ngram_size == 2
    assert FastLogitsProcessor.generate_kwargs()["no_repeat_ngram_size"] == 0


@pytest.mark.parametrize("value, error", [(-1, ValueError), (1.5, TypeError),
                                          (True, TypeError), ("2", TypeError)])
def test_bad_values_are_rejected(value, error):
    x = torch.zeros(2, 10)
    with pytest.raises(error, match="no_repeat_ngram_size"):
        fastsample.process_logits(x, no_repeat_ngram_size=value, output_token_ids=[[1], [2]])
    with pytest.raises(error, match="no_repeat_ngram_size"):
        fastsample.sample(x, no_repeat_ngram_size=value, output_token_ids=[[1], [2]])
    with pytest.raises(error, match="no_repeat_ngram_size"):
        SamplingParams(no_repeat_ngram_size=value)
    with pytest.raises((ValueError, TypeError), match="no_repeat_ngram_size"):
        fastsample.from_hf({"no_repeat_ngram_size": value})


def test_unordered_output_is_rejected():
    with pytest.raises(ValueError, match="no_repeat_ngram_size reads the output in order"):
        fastsample.sample(torch.zeros(1, 10), no_repeat_ngram_size=2, output_token_ids=[[1, 2]],
                          output_token_counts=[[1, 3]])


def test_presence_penalty_beside_repetition_in_the_processor():
    """FastLogitsProcessor applies presence and frequency penalties over input_ids also when a
    repetition penalty is on (both read the same history)."""
    input_ids = torch.tensor([[1, 2, 2]])
    scores = torch.ones(1, 5)
    kw = dict(repetition_penalty=1.5, presence_penalty=1.0, frequency_penalty=0.25)
    got = FastLogitsProcessor(**kw)(input_ids, scores)
    want = reference.process_logits(scores, output_token_ids=input_ids, **kw)
    assert torch.equal(got, want)
    assert got[0, 1] == pytest.approx(1 / 1.5 - 1.25) and got[0, 2] == pytest.approx(1 / 1.5 - 1.5)
