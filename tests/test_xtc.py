"""XTC (llama.cpp's "exclude top choices"): with probability xtc_probability per step, when two
or more tokens reach xtc_threshold, every one of them but the least likely is removed; the
keep-set becomes a band [lo, hi] on z. Tiny exact cases, llama.cpp's own definition, the
reference bit for bit (the patched edited-row path and the baseline build run this file too:
test_edited_row_paths.py, test_simd_levels.py; the CUDA block code in test_cuda_emulation.py),
the coin, every path a request takes, and the errors."""
import math

import numpy as np
import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference
from fastsample.transformers import FastLogitsProcessor

from helpers import (assert_compile_refuses, assert_kernels_equal_the_reference,
                     random_logits)

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
PROBS = [0.4, 0.3, 0.2, 0.06, 0.04]


def kept(out, row=0):
    return (out[row] > -math.inf).nonzero().flatten().tolist()


@pytest.mark.parametrize("threshold, expected", [
    (0.1, [2, 3, 4]),           # top choices 0.4, 0.3, 0.2: all but 0.2 go
    (0.25, [1, 2, 3, 4]),       # 0.4 and 0.3: 0.4 goes
    (0.35, [0, 1, 2, 3, 4]),    # one top choice: nothing goes
    (0.5, [0, 1, 2, 3, 4]),     # none
    (0.05, [3, 4]),             # all but 0.04 reach it: 0.06 stays
    (0.0, [4]),                 # every token is a top choice: the least likely stays
])
def test_tiny_rows_keep_what_the_definition_says(threshold, expected):
    x = torch.tensor([PROBS]).log()
    out = fastsample.process_logits(x, xtc_threshold=threshold, xtc_probability=1.0)
    assert kept(out) == expected
    assert torch.equal(out, reference.process_logits(x, xtc_threshold=threshold,
                                                     xtc_probability=1.0))
    # The kept tokens' probabilities, renormalized over the band.
    probs = torch.softmax(out[0].double(), 0)
    want = torch.tensor(PROBS, dtype=torch.float64)[expected]
    assert torch.allclose(probs[expected], want / want.sum(), atol=1e-6)


def test_ties_with_the_least_likely_top_choice_stay():
    x = torch.tensor([[0.3, 0.3, 0.2, 0.2]]).log()
    # 0.3 and 0.3 reach 0.25, tied: the least likely of them is both, nothing goes.
    assert kept(fastsample.process_logits(x, xtc_threshold=0.25, xtc_probability=1.0)) == [
        0, 1, 2, 3]
    # All four reach 0.15; the least likely value, 0.2, is held by two tokens: both stay.
    assert kept(fastsample.process_logits(x, xtc_threshold=0.15, xtc_probability=1.0)) == [2, 3]


def test_probabilities_are_over_what_the_other_filters_keep_at_the_temperature():
    x = torch.tensor([PROBS]).log()
    # top-k 2 keeps 0.4 and 0.3: renormalized 0.571 and 0.429, both >= 0.4.
    out = fastsample.process_logits(x, top_k=2, xtc_threshold=0.4, xtc_probability=1.0)
    assert kept(out) == [1]
    # T = 3 flattens the row: probabilities ~ p^(1/3) = 0.26, 0.24, 0.21, 0.14, 0.12.
    out = fastsample.process_logits(x, temperature=3.0, xtc_threshold=0.2,
                                    xtc_probability=1.0)
    assert kept(out) == [2, 3, 4]
    assert torch.equal(out, reference.process_logits(x, temperature=3.0, xtc_threshold=0.2,
                                                     xtc_probability=1.0))


def test_greedy_rows_and_rows_without_a_finite_logit():
    x = torch.tensor([PROBS, [-math.inf] * 5]).log()
    x[1] = -math.inf
    out = fastsample.sample(x, temperature=0.0, xtc_threshold=0.1, xtc_probability=1.0,
                            return_valid=True)
    assert out.tokens.tolist() == [0, -1] and out.valid.tolist() == [True, False]


def llama_cpp_keep(x: np.ndarray, threshold: float) -> np.ndarray:
    """llama.cpp's llama_sampler_xtc_apply with its coin showing "act": softmax in float32,
    candidates sorted by probability; pos_last = the last position whose p >= threshold (from
    the top); the first pos_last candidates are dropped when pos_last > 0."""
    x = x.astype(np.float32)
    e = np.exp(x - x.max(), dtype=np.float32)
    p = e / e.sum(dtype=np.float32)
    order = np.argsort(-p, kind="stable")
    pos_last = 0
    for i, idx in enumerate(order):
        if p[idx] >= np.float32(threshold):
            pos_last = i
        else:
            break
    keep = np.ones(len(x), dtype=bool)
    keep[order[:pos_last]] = False
    return keep


@pytest.mark.parametrize("vocab", [50, 4099, 32000])
@pytest.mark.parametrize("threshold", [0.02, 0.05, 0.1, 0.2])
def test_matches_llama_cpp_away_from_the_threshold(vocab, threshold):
    """Without ties, the two agree except where a probability lies within 1e-5 (relative) of
    the threshold: the kernels' masses are fixed point (tolerance)."""
    x = random_logits(6, vocab, seed=vocab + int(threshold * 100), scale=1.0)
    x[:, :6] += torch.tensor([4.0, 3.8, 3.5, 3.0, 2.5, 2.0])
    out = fastsample.process_logits(x, xtc_threshold=threshold, xtc_probability=1.0)
    for r in range(x.shape[0]):
        row = x[r].numpy()
        want = llama_cpp_keep(row, threshold)
        got = (out[r] > -math.inf).numpy()
        p = torch.softmax(x[r].double(), 0).numpy()
        near = np.abs(p - threshold) < 1e-5 * threshold
        assert np.array_equal(got, want) or near.any(), (r, np.nonzero(got != want)[0][:5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("combo", [
    dict(xtc_threshold=0.05, xtc_probability=1.0),
    dict(xtc_threshold=0.02, xtc_probability=0.5, temperature=0.7, top_k=40),
    dict(xtc_threshold=0.1, xtc_probability=1.0, top_p=0.9, min_p=0.01),
    dict(xtc_threshold=0.01, xtc_probability=0.8, top_n_sigma=1.5, temperature=1.3),
    dict(xtc_threshold=0.05, xtc_probability=1.0, repetition_penalty=1.4,
         prompt_token_ids=[[1, 2, 3]] * 5, banned_token_ids=[7], logit_bias={9: 4.0}),
])
def test_kernels_equal_the_reference(dtype, combo):
    x = random_logits(5, 4099, dtype=dtype, seed=13, special=True)
    x[:, 100:104] += 6.0  # several top choices in most rows
    assert_kernels_equal_the_reference(x, combo)


def test_the_coin_acts_with_its_probability():
    """4000 rows with their own seeds, probability 0.3: the share of rows cut is within 5
    standard deviations (0.036) of 0.3; a seeded row's coin moves with its offset."""
    x = torch.tensor([PROBS]).log().expand(4000, 5).contiguous()
    out = fastsample.process_logits(x, xtc_threshold=0.1, xtc_probability=0.3,
                                    seed=list(range(4000)))
    cut = (out[:, 0] == -math.inf).double().mean().item()
    assert abs(cut - 0.3) < 0.036, cut
    assert torch.equal(out, reference.process_logits(x, xtc_threshold=0.1, xtc_probability=0.3,
                                                     seed=list(range(4000))))
    along = fastsample.process_logits(x, xtc_threshold=0.1, xtc_probability=0.3, seed=7,
                                      offset=list(range(4000)))
    cut = (along[:, 0] == -math.inf).double().mean().item()
    assert abs(cut - 0.3) < 0.036, cut
    # The coin and the draw are independent: tokens of the rows the coin spared follow the
    # untouched distribution (0.4 for token 0 within 5 sd of 0.0093).
    tokens = fastsample.sample(x, xtc_threshold=0.1, xtc_probability=0.3,
                               seed=list(range(4000)))
    spared = out[:, 0] > -math.inf
    share = (tokens[spared] == 0).double().mean().item()
    assert abs(share - 0.4) < 5 * math.sqrt(0.4 * 0.6 / int(spared.sum())), share


def test_process_logits_draws_seeds_only_for_xtc():
    x = torch.randn(3, 100)
    torch.manual_seed(0)
    fastsample.process_logits(x, top_p=0.9)
    after_plain = torch.rand(1)
    torch.manual_seed(0)
    torch.rand(1)
    assert not torch.equal(after_plain, torch.rand(1))  # sanity: the stream moves on
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after_plain)  # process_logits drew nothing
    torch.manual_seed(5)
    a = fastsample.process_logits(x * 3, xtc_threshold=0.05, xtc_probability=0.5)
    torch.manual_seed(5)
    b = fastsample.process_logits(x * 3, xtc_threshold=0.05, xtc_probability=0.5)
    assert torch.equal(a, b)


def test_long_rows_with_processed_logprobs_read_the_band():
    """Processed top-n over a band on the whole-row path (no top-k candidate list)."""
    x = random_logits(3, 50000, seed=4, scale=2.0)
    x[:, 10:14] = torch.tensor([20.0, 19.8, 19.6, 19.4])  # four top choices, 0.2-0.3 each
    kw = dict(xtc_threshold=0.05, xtc_probability=1.0, seed=[1, 2, 3], logprobs=20,
              logprobs_mode="processed")
    a, b = fastsample.sample(x, **kw), reference.sample(x, **kw)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.top_ids, b.top_ids)
    assert torch.allclose(a.top_logprobs, b.top_logprobs, atol=1e-5)
    # The least likely of the four stays, on top; the other three are gone.
    assert a.top_ids[:, 0].tolist() == [13, 13, 13]
    assert not bool(torch.isin(a.top_ids, torch.arange(10, 13)).any())


def test_per_row_values_and_the_common_call():
    x = random_logits(4, 1000, seed=3)
    x[:, :3] += 5.0
    t = torch.tensor([0.0, 0.05, 0.1, 0.2])
    p = [1.0, 0.0, 1.0, 1.0]
    out = fastsample.process_logits(x, xtc_threshold=t, xtc_probability=p, seed=9)
    for r in range(4):
        single = fastsample.process_logits(x[r:r + 1], xtc_threshold=float(t[r]),
                                           xtc_probability=p[r], seed=9)
        assert torch.equal(out[r:r + 1], single)
    a = fastsample.sample(x, xtc_threshold=0.1, xtc_probability=1.0, seed=5)
    b = fastsample.sample(x, xtc_threshold=torch.full((4,), 0.1),
                          xtc_probability=torch.ones(4), seed=5)
    assert torch.equal(a, b)


def test_every_request_path_honours_it():
    vocab = 64
    x = torch.full((1, vocab), -10.0)
    x[0, 5], x[0, 6], x[0, 7] = 3.0, 2.9, 2.8  # three top choices at threshold 0.2
    params = SamplingParams(xtc_threshold=0.2, xtc_probability=1.0, seed=0)
    assert fastsample.from_openai({"xtc_threshold": 0.2, "xtc_probability": 1.0,
                                   "seed": 0}) == params
    batch = fastsample.SamplingBatch([params])
    assert batch.filter_kwargs()["xtc_probability"].tolist() == [1.0]
    assert batch.flags.any_xtc
    assert fastsample.sample(x, batch=batch).tolist() == [7]
    assert kept(fastsample.process_logits(x, batch=batch)) == [t for t in range(vocab)
                                                               if t not in (5, 6)]
    sampler = fastsample.Sampler(vocab)
    for i in range(20):
        sampler.add(i, SamplingParams(xtc_threshold=0.2, xtc_probability=1.0, seed=i), [1, 2])
    for _ in range(3):
        tokens = sampler.step(x.expand(20, vocab).contiguous()).tokens.tolist()
        assert not {5, 6} & set(tokens), tokens
    proc = FastLogitsProcessor.from_params(params)
    assert (proc.params.xtc_threshold, proc.params.xtc_probability) == (0.2, 1.0)
    scores = proc(torch.tensor([[1, 2]]), x)
    assert torch.equal(scores, fastsample.process_logits(x, xtc_threshold=0.2,
                                                         xtc_probability=1.0))
    # A seeded processor's coin is the row's stream at offset = the sequence length.
    half = FastLogitsProcessor(xtc_threshold=0.2, xtc_probability=0.5, seed=3)
    for length in range(1, 8):
        ids = torch.zeros(1, length, dtype=torch.long)
        assert torch.equal(half(ids, x), fastsample.process_logits(
            x, xtc_threshold=0.2, xtc_probability=0.5, seed=3, offset=length))


def test_torch_compile_refuses_it_rather_than_dropping_it():
    assert_compile_refuses([lambda t: fastsample.sample(t, xtc_probability=0.5),
                            lambda t: fastsample.process_logits(t, xtc_probability=0.5)], "XTC")


@pytest.mark.parametrize("name", ["xtc_threshold", "xtc_probability"])
@pytest.mark.parametrize("value, error, pattern", [
    (-0.1, ValueError, r"=-0.1 is out of range; allowed: a number in \[0, 1\]"),
    (1.5, ValueError, r"=1.5 is out of range"),
    (float("nan"), ValueError, r"=nan is out of range"),
    ("0.1", TypeError, r" must be a number"),
    ([0.1, 2.0], ValueError, r"\[1\]=2.0 is out of range"),
])
def test_bad_values_are_errors_naming_the_field(name, value, error, pattern):
    x = torch.randn(2, 10)
    with pytest.raises(error, match=name + pattern):
        fastsample.sample(x, **{name: value})
    with pytest.raises(error, match=name + pattern):
        fastsample.process_logits(x, **{name: value})
    if not isinstance(value, list):
        with pytest.raises(error, match=name + pattern):
            SamplingParams(**{name: value})


def test_process_logits_checks_seeds_it_does_not_draw_with():
    x = torch.randn(2, 10)
    with pytest.raises(ValueError, match="seed"):
        fastsample.process_logits(x, seed=-5)
    with pytest.raises(ValueError, match="offset"):
        fastsample.process_logits(x, offset=-1)
    with pytest.raises(TypeError, match="generator"):
        fastsample.process_logits(x, generator="g")
