"""top-n-sigma (llama.cpp's top_n_sigma): keep z >= max(z) - n * std(z) over the row's finite
logits. Tiny exact cases, llama.cpp's own definition, the reference bit for bit (the patched
edited-row path and the baseline build run this file too: test_edited_row_paths.py,
test_simd_levels.py; the CUDA block code in test_cuda_emulation.py), every path a request
takes, and the errors."""
import math

import numpy as np
import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference
from fastsample.transformers import FastLogitsProcessor

from helpers import assert_compile_refuses, assert_keep_sets_match, random_logits

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def kept(out):
    return (out[0] > -math.inf).nonzero().flatten().tolist()


@pytest.mark.parametrize("n, expected", [
    # x = [0, 1, 2, 3, 10]: mean 3.2, std sqrt(62.8 / 5) = 3.544; max - n * std:
    (1.0, [4]),           # 6.456
    (2.0, [3, 4]),        # 2.912
    (2.6, [1, 2, 3, 4]),  # 0.786
    (3.0, [0, 1, 2, 3, 4]),  # -0.632
])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_tiny_rows_keep_what_the_definition_says(n, expected, temperature):
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0, 10.0]])
    out = fastsample.process_logits(x, top_n_sigma=n, temperature=temperature)
    assert kept(out) == expected
    assert torch.equal(out, reference.process_logits(x, top_n_sigma=n, temperature=temperature))
    # The kept tokens' probabilities, renormalized over the keep-set.
    probs = torch.softmax(out[0].double(), 0)
    want = torch.softmax(x[0, expected].double() / temperature, 0)
    assert torch.allclose(probs[expected], want, atol=1e-6)


def test_masked_tokens_do_not_count_and_a_constant_row_keeps_its_ties():
    x = torch.tensor([[0.0, -math.inf, 1.0, -math.inf, 3.0, 3.0],
                      [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    out = fastsample.process_logits(x, top_n_sigma=1.0)
    # Row 0 over {0, 1, 3, 3}: mean 1.75, std 1.299: cut 1.70.
    assert (out[0] > -math.inf).nonzero().flatten().tolist() == [4, 5]
    assert bool((out[1] > -math.inf).all())  # std 0: the cut is the max itself, all tied


def llama_cpp_keep(x: np.ndarray, n: float) -> np.ndarray:
    """llama.cpp's llama_sampler_top_n_sigma_apply, in float32: mean and std over the logits
    that are not -inf, then logit < max - n * std is dropped."""
    x = x.astype(np.float32)
    finite = x != -np.inf
    vals = x[finite]
    mx = np.float32(vals.max())
    mean = np.float32(vals.sum(dtype=np.float32) / np.float32(len(vals)))
    std = np.float32(np.sqrt(np.float32(((vals - mean) ** 2).sum(dtype=np.float32))
                             / np.float32(len(vals))))
    return finite & ~(x < mx - np.float32(n) * std)


@pytest.mark.parametrize("vocab", [100, 4099, 32000])
@pytest.mark.parametrize("n", [0.5, 1.0, 2.0, 3.0])
def test_matches_llama_cpp_away_from_the_cut(vocab, n):
    """The kernels' std is exact over logits quantized to 2^-16 (row_filters.h); llama.cpp's is
    a float32 sum: keep-sets may differ only for tokens within 1e-3 of the cut (tolerance)."""
    x = random_logits(6, vocab, seed=vocab + int(n * 10), scale=2.5)
    x[:, :5] += 6.0
    out = fastsample.process_logits(x, top_n_sigma=n)
    for r in range(x.shape[0]):
        row = x[r].numpy()
        want = llama_cpp_keep(row, n)
        got = (out[r] > -math.inf).numpy()
        vals = row[row != -np.inf]
        cut = vals.max() - n * vals.std()
        differ = np.nonzero(got != want)[0]
        assert all(abs(row[i] - cut) < 1e-3 for i in differ), (r, differ[:5], cut)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("combo", [
    dict(top_n_sigma=1.0),
    dict(top_n_sigma=0.7, temperature=0.6, top_k=40),
    dict(top_n_sigma=2.0, top_p=0.9),
    dict(top_n_sigma=1.5, min_p=0.05, temperature=1.3, top_p=0.8, top_k=200),
    dict(top_n_sigma=1.0, repetition_penalty=1.4, prompt_token_ids=[[1, 2, 3]] * 5,
         banned_token_ids=[7], logit_bias={9: 4.0}),
])
def test_kernels_equal_the_reference(dtype, combo):
    x = random_logits(5, 4099, dtype=dtype, seed=11, special=True)
    assert_keep_sets_match(x, fastsample.process_logits(x, **combo), **combo)
    got = fastsample.sample(x, seed=[1, 2, 3, 4, 5], offset=3, return_valid=True, **combo)
    want = reference.sample(x, seed=[1, 2, 3, 4, 5], offset=3, return_valid=True, **combo)
    assert torch.equal(got.tokens, want.tokens) and torch.equal(got.valid, want.valid)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_top_k_candidate_list_reads_the_whole_rows_std(dtype):
    """With a small top-k the keep-set comes from a candidate list of the row's top, but std
    is the whole row's: over the list alone (a narrow spread) the cut would keep far fewer."""
    x = random_logits(4, 128256, dtype=dtype, seed=21, scale=3.0)
    for combo in (dict(top_k=50, top_n_sigma=1.0), dict(top_k=20, top_n_sigma=0.3, top_p=0.9),
                  dict(top_k=50, top_n_sigma=0.5, temperature=0.7, logprobs=3,
                       logprobs_mode="processed")):
        filters = {k: v for k, v in combo.items() if not k.startswith("logprobs")}
        got = fastsample.process_logits(x, **filters)
        assert_keep_sets_match(x, got, **filters)
        assert int((got > -math.inf).sum(dim=1).min()) > 1
        a = fastsample.sample(x, seed=[1, 2, 3, 4], **combo)
        b = reference.sample(x, seed=[1, 2, 3, 4], **combo)
        assert torch.equal(a if isinstance(a, torch.Tensor) else a.tokens,
                           b if isinstance(b, torch.Tensor) else b.tokens)


def test_per_row_values_and_the_common_call():
    x = random_logits(4, 1000, seed=3)
    n = torch.tensor([0.0, 0.5, 1.0, 3.0])
    out = fastsample.process_logits(x, top_n_sigma=n)
    for r in range(4):
        single = fastsample.process_logits(x[r:r + 1], top_n_sigma=float(n[r]))
        assert torch.equal(out[r:r + 1], single)
    # The plain-scalar call (sample's fast path) and the general one agree.
    a = fastsample.sample(x, top_n_sigma=1.0, seed=5)
    b = fastsample.sample(x, top_n_sigma=torch.full((4,), 1.0), seed=5)
    assert torch.equal(a, b)
    one = fastsample.process_logits(x, top_n_sigma=1.0)
    assert all(bool(one[r, t] > -math.inf) for r, t in enumerate(a.tolist()))


def test_every_request_path_honours_it():
    vocab = 64
    x = torch.zeros(1, vocab)
    # n = 1 keeps {5, 6} (cut 2.49); without it the other 62 tokens hold 62% of the mass.
    x[0, 5], x[0, 6] = 3.0, 2.9
    params = SamplingParams(top_n_sigma=1.0, seed=0)
    assert fastsample.from_openai({"top_n_sigma": 1.0}).top_n_sigma == 1.0
    assert fastsample.SamplingBatch([params]).filter_kwargs()["top_n_sigma"].tolist() == [1.0]
    sampler = fastsample.Sampler(vocab)
    for i in range(20):
        sampler.add(i, SamplingParams(top_n_sigma=1.0, seed=i), [1, 2])
    tokens = sampler.step(x.expand(20, vocab).contiguous()).tokens.tolist()
    assert set(tokens) <= {5, 6}
    proc = FastLogitsProcessor.from_params(params)
    assert proc.params.top_n_sigma == 1.0
    scores = proc(torch.tensor([[1, 2]]), x)
    assert torch.equal(scores, fastsample.process_logits(x, top_n_sigma=1.0))


def test_torch_compile_refuses_it_rather_than_dropping_it():
    assert_compile_refuses([lambda t: fastsample.sample(t, top_n_sigma=1.0),
                            lambda t: fastsample.process_logits(t, top_n_sigma=1.0)], "top_n_sigma")


@pytest.mark.parametrize("value, error, pattern", [
    (-0.5, ValueError, r"top_n_sigma=-0.5 is out of range; allowed: a finite number >= 0"),
    (float("nan"), ValueError, r"top_n_sigma=nan is out of range"),
    (float("inf"), ValueError, r"top_n_sigma=inf is out of range"),
    ("1", TypeError, r"top_n_sigma must be a number"),
    ([1.0, -2.0], ValueError, r"top_n_sigma\[1\]=-2.0 is out of range"),
])
def test_bad_values_are_errors_naming_the_field(value, error, pattern):
    x = torch.randn(2, 10)
    with pytest.raises(error, match=pattern):
        fastsample.sample(x, top_n_sigma=value)
    with pytest.raises(error, match=pattern):
        fastsample.process_logits(x, top_n_sigma=value)
    if not isinstance(value, list):
        with pytest.raises(error, match=pattern):
            SamplingParams(top_n_sigma=value)
