"""typical-p, epsilon and eta (transformers' TypicalLogitsWarper, EpsilonLogitsWarper and
EtaLogitsWarper), in that order after top-k, top-n-sigma, top-p and min-p. Tiny exact cases,
transformers' own warpers, the reference bit for bit (the patched edited-row path and the
baseline build run this file too: test_edited_row_paths.py, test_simd_levels.py; the CUDA block
code in test_cuda_emulation.py), the draw's distribution, every path a request takes, and the
errors."""
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference
from fastsample.transformers import FastLogitsProcessor, from_generation_config

from helpers import (assert_compile_refuses, assert_keep_sets_match, chi_square, chi_square_bound,
                     assert_kernels_equal_the_reference, random_logits)

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# -log p - H for these: 0.431, 0.143, 0.262, 1.466, 1.872 (H = 1.3472), so typical-p adds
# tokens 1, 2, 0, 3, 4 in that order: cumulative mass 0.3, 0.5, 0.9, 0.96, 1.
PROBS = [0.4, 0.3, 0.2, 0.06, 0.04]


def kept(out, row=0):
    return (out[row] > -math.inf).nonzero().flatten().tolist()


def check_tiny(params, expected):
    x = torch.tensor([PROBS]).log()
    out = fastsample.process_logits(x, **params)
    assert kept(out) == expected
    assert torch.equal(out, reference.process_logits(x, **params))
    # The kept tokens' probabilities, renormalized over the keep-set.
    probs = torch.softmax(out[0].double(), 0)
    want = torch.tensor(PROBS, dtype=torch.float64)[expected]
    assert torch.allclose(probs[expected], want / want.sum(), atol=1e-6)


@pytest.mark.parametrize("typical_p, expected", [
    (0.2, [1]),                # the most typical token alone
    (0.45, [1, 2]),            # 0.3 + 0.2 reaches 0.45: the argmax (0.4) is not typical enough
    (0.6, [0, 1, 2]),
    (0.95, [0, 1, 2, 3]),
    (0.99, [0, 1, 2, 3, 4]),
])
def test_typical_tiny_rows(typical_p, expected):
    check_tiny(dict(typical_p=typical_p), expected)


@pytest.mark.parametrize("epsilon, expected", [
    (0.05, [0, 1, 2, 3]),      # 0.04 < 0.05
    (0.25, [0, 1]),
    (0.5, [0]),                # no token reaches it: the top one stays (min_tokens_to_keep 1)
    (1.0, [0]),
])
def test_epsilon_tiny_rows(epsilon, expected):
    check_tiny(dict(epsilon_cutoff=epsilon), expected)


@pytest.mark.parametrize("eta, expected", [
    (0.2, [0, 1, 2]),          # min(0.2, sqrt(0.2) e^-1.3472 = 0.1163)
    (0.05, [0, 1, 2, 3]),      # min(0.05, 0.0581)
])
def test_eta_tiny_rows(eta, expected):
    check_tiny(dict(eta_cutoff=eta), expected)


def test_each_filter_measures_what_the_one_before_keeps():
    # top-k 3 first: 0.444, 0.333, 0.222, -log q - H = 0.250, 0.038, 0.444: tokens 1, 0 reach 0.5.
    check_tiny(dict(top_k=3, typical_p=0.5), [0, 1])
    # typical 0.6 keeps 0.4, 0.3, 0.2, renormalized 0.444, 0.333, 0.222: all >= 0.21 (0.2
    # alone would not be).
    check_tiny(dict(typical_p=0.6, epsilon_cutoff=0.21), [0, 1, 2])
    # eta's entropy is that of what epsilon 0.1 keeps, {0.4, 0.3, 0.2} / 0.9 (H = 1.0608):
    # min(0.5, sqrt(0.5) e^-1.0608 = 0.2448) drops 0.222. Over the whole row (H = 1.3472) the
    # cutoff would be 0.1838, keeping 0.2.
    check_tiny(dict(epsilon_cutoff=0.1, eta_cutoff=0.5), [0, 1])
    check_tiny(dict(eta_cutoff=0.5), [0, 1, 2])


def test_a_cutoff_after_typical_keeps_the_top_of_what_typical_keeps():
    """typical-p drops the argmax (z 0) and keeps the 1000 tokens at z -5 (q 0.001 each); an
    epsilon above that keeps them all, as tokens tied with the top of what is left."""
    x = torch.full((1, 1001), -5.0)
    x[0, 0] = 0.0
    for params in (dict(typical_p=0.5, epsilon_cutoff=0.002),
                   dict(typical_p=0.5, epsilon_cutoff=0.002, eta_cutoff=0.9)):
        out = fastsample.process_logits(x, **params)
        assert kept(out) == list(range(1, 1001)), params
        assert torch.equal(out, reference.process_logits(x, **params))
        tokens = fastsample.sample(x.expand(8, 1001), seed=list(range(8)), **params)
        assert bool((tokens >= 1).all())


def test_ties_and_masked_tokens():
    # -log p - H = 0.301, 0.301, 0.104, 0.798, 0.798: token 2 holds 0.2 < 0.3, and the next
    # closest are the tied 0 and 1, kept together.
    x = torch.tensor([[0.3, 0.3, 0.2, 0.1, 0.1]]).log()
    out = fastsample.process_logits(x, typical_p=0.3)
    assert torch.equal(out, reference.process_logits(x, typical_p=0.3))
    assert kept(out) == [0, 1, 2]
    # -inf tokens have no mass and are never kept; a row with one finite token keeps it.
    y = torch.tensor([[-math.inf, 1.0, -math.inf, -math.inf]])
    for params in (dict(typical_p=0.1), dict(epsilon_cutoff=0.9), dict(eta_cutoff=0.9)):
        assert kept(fastsample.process_logits(y, **params)) == [1]
    z = torch.full((1, 4), -math.inf)
    out = fastsample.sample(z, typical_p=0.5, return_valid=True)
    assert out.tokens.tolist() == [-1] and out.valid.tolist() == [False]


def transformers_chain(scores, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0,
                       epsilon_cutoff=0.0, eta_cutoff=0.0):
    """transformers' warpers as _get_logits_processor orders them for do_sample=True."""
    from transformers.generation import logits_process as lp
    warpers = []
    if temperature != 1.0:
        warpers.append(lp.TemperatureLogitsWarper(temperature))
    if top_k:
        warpers.append(lp.TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(lp.TopPLogitsWarper(top_p))
    if min_p:
        warpers.append(lp.MinPLogitsWarper(min_p))
    if typical_p < 1.0:
        warpers.append(lp.TypicalLogitsWarper(typical_p))
    if 0.0 < epsilon_cutoff < 1.0:
        warpers.append(lp.EpsilonLogitsWarper(epsilon_cutoff))
    if 0.0 < eta_cutoff < 1.0:
        warpers.append(lp.EtaLogitsWarper(eta_cutoff))
    ids = torch.zeros(scores.shape[0], 1, dtype=torch.long)
    for w in warpers:
        scores = w(ids, scores)
    return scores


COMBOS = [
    dict(typical_p=0.9),
    dict(typical_p=0.2, temperature=0.7),
    dict(epsilon_cutoff=3e-4),
    dict(eta_cutoff=1e-3, temperature=1.3),
    dict(top_k=50, typical_p=0.7),
    dict(top_k=40, top_p=0.9, epsilon_cutoff=0.02, eta_cutoff=0.01),
    dict(temperature=0.8, top_p=0.95, min_p=0.01, typical_p=0.95, epsilon_cutoff=1e-4),
]


@pytest.mark.parametrize("vocab", [50, 4099, 32000])
@pytest.mark.parametrize("combo", COMBOS)
def test_transformers_warpers_agree_within_the_tolerances(vocab, combo):
    """transformers' chain, the reference and the kernels keep the same sets, up to the stated
    boundary tolerances (transformers sums in float32, the reference in float64, the kernels in
    fixed point): reference.verify's checks, applied to transformers' scores as well."""
    x = random_logits(6, vocab, seed=vocab + len(combo), scale=2.5)
    x[:, :3] += torch.tensor([3.0, 2.5, 2.0])
    hf = transformers_chain(x.clone(), **combo)
    assert_keep_sets_match(x, hf, **combo)
    got = fastsample.process_logits(x, **combo)
    assert_keep_sets_match(x, got, **combo)
    # Away from the boundaries the kernels equal transformers outright on most rows.
    same = ((hf > -math.inf) == (got > -math.inf)).all(dim=1)
    assert int(same.sum()) >= 5, combo


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("combo", [
    dict(typical_p=0.8),
    dict(typical_p=0.3, temperature=0.6, top_k=40),
    dict(epsilon_cutoff=1e-3, top_p=0.9, min_p=0.01),
    dict(eta_cutoff=3e-3, top_n_sigma=2.0, temperature=1.2),
    dict(typical_p=0.9, xtc_threshold=0.05, xtc_probability=1.0),
    dict(typical_p=0.7, eta_cutoff=1e-3, repetition_penalty=1.4,
         prompt_token_ids=[[1, 2, 3]] * 5, banned_token_ids=[7], logit_bias={9: 4.0}),
])
def test_kernels_equal_the_reference(dtype, combo):
    x = random_logits(5, 4099, dtype=dtype, seed=17, special=True)
    x[:, 100:104] += 6.0
    assert_kernels_equal_the_reference(x, combo)


def test_long_rows_where_typical_removes_the_argmax():
    """The whole-row path (no top-k list): a peaked row whose top is far above its typical
    value; the draw and processed logprobs read the band below it."""
    x = random_logits(3, 50000, seed=5, scale=1.0)
    x[:, 0] = 9.0  # ~0.2 of the mass, far less typical than the bulk
    kw = dict(typical_p=0.5, seed=[1, 2, 3], logprobs=20, logprobs_mode="processed")
    got = fastsample.process_logits(x, typical_p=0.5)
    assert_keep_sets_match(x, got, typical_p=0.5)
    assert not bool((got[:, 0] > -math.inf).any())
    a, b = fastsample.sample(x, **kw), reference.sample(x, **kw)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.top_ids, b.top_ids)
    assert torch.allclose(a.top_logprobs, b.top_logprobs, atol=1e-5)
    assert not bool((a.top_ids == 0).any())


@pytest.mark.parametrize("params", [dict(typical_p=0.7), dict(epsilon_cutoff=0.03),
                                    dict(eta_cutoff=0.05, temperature=0.8)])
def test_draws_follow_the_kept_distribution(params):
    """20000 draws (seeds 0..19999) of one 40-token row: the counts match the reference's
    keep-set probabilities, Pearson chi-square below the 0.001 quantile."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(1, 40, generator=g) * 1.5).expand(20000, 40).contiguous()
    tokens = fastsample.sample(x, seed=list(range(20000)), **params)
    keep = reference.process_logits(x[:1], **params)[0]
    probs = torch.softmax(keep.double(), 0)
    counts = torch.bincount(tokens, minlength=40).double()
    df = int((probs > 0).sum()) - 1
    assert df >= 3
    assert chi_square(counts, probs) < chi_square_bound(df), params


def test_per_row_values_and_rows_that_leave_them_off():
    x = random_logits(4, 1000, seed=3)
    kw = dict(typical_p=[1.0, 0.5, 0.9, 0.3], epsilon_cutoff=torch.tensor([0.0, 1e-3, 0.0, 0.01]),
              eta_cutoff=[0.0, 0.0, 2e-3, 0.0])
    out = fastsample.process_logits(x, **kw)
    for r in range(4):
        single = fastsample.process_logits(x[r:r + 1], **{k: float(v[r]) for k, v in kw.items()})
        assert torch.equal(out[r:r + 1], single)
    assert torch.equal(out[0], fastsample.process_logits(x[:1])[0])


def test_every_request_path_honours_them():
    from transformers import GenerationConfig
    vocab = 64
    x = torch.zeros(1, vocab)
    x[0, 5] = 3.0  # q 0.24 among 63 tokens of 0.012: far more likely than typical (H = 3.7)
    params = SamplingParams(typical_p=0.3, epsilon_cutoff=1e-4, eta_cutoff=1e-4, seed=0)
    fields = dict(typical_p=0.3, epsilon_cutoff=1e-4, eta_cutoff=1e-4)
    want = fastsample.process_logits(x, **fields)
    assert kept(want) == [t for t in range(vocab) if t != 5]
    assert fastsample.from_openai({**fields, "seed": 0}) == params
    hf = fastsample.from_hf(GenerationConfig(do_sample=True, top_k=0, seed=0, **fields))
    assert (hf.typical_p, hf.epsilon_cutoff, hf.eta_cutoff) == (0.3, 1e-4, 1e-4)
    batch = fastsample.SamplingBatch([params])
    assert batch.filter_kwargs()["typical_p"].tolist() == [0.3]
    assert torch.equal(fastsample.process_logits(x, batch=batch), want)
    assert fastsample.sample(x, batch=batch).item() in kept(want)
    sampler = fastsample.Sampler(vocab)
    for i in range(20):
        sampler.add(i, SamplingParams(**fields, seed=i), [1, 2])
    for _ in range(3):
        tokens = sampler.step(x.expand(20, vocab).contiguous()).tokens.tolist()
        assert set(tokens) <= set(kept(want)), tokens
    proc = FastLogitsProcessor.from_params(params)
    assert torch.equal(proc(torch.tensor([[1, 2]]), x), want)
    # transformers' own warpers for these fields are switched off beside the processor.
    off = FastLogitsProcessor.generate_kwargs()
    assert (off["typical_p"], off["epsilon_cutoff"], off["eta_cutoff"]) == (1.0, 0.0, 0.0)
    proc = from_generation_config(GenerationConfig(do_sample=True, top_k=0, **fields))
    assert torch.equal(proc(torch.tensor([[1, 2]]), x), want)


def test_from_hf_reads_them_as_transformers_does():
    from transformers import GenerationConfig
    # A cutoff of 1 is skipped by transformers: off here too.
    p = fastsample.from_hf(GenerationConfig(do_sample=True, epsilon_cutoff=1.0, eta_cutoff=1.0))
    assert (p.epsilon_cutoff, p.eta_cutoff) == (0.0, 0.0)
    # Greedy configs sample nothing: the filters do not apply.
    p = fastsample.from_hf({"do_sample": False, "typical_p": 0.5, "epsilon_cutoff": 0.1})
    assert (p.typical_p, p.epsilon_cutoff) == (1.0, 0.0)
    with pytest.raises(ValueError, match="typical_p=0.0 is out of range"):
        fastsample.from_hf({"do_sample": True, "typical_p": 0.0})
    with pytest.raises(ValueError, match="eta_cutoff=-0.1 is out of range"):
        fastsample.from_hf({"do_sample": True, "eta_cutoff": -0.1})


def test_torch_compile_refuses_them_rather_than_dropping_them():
    for name, value in (("typical_p", 0.9), ("epsilon_cutoff", 0.01), ("eta_cutoff", 0.01)):
        assert_compile_refuses(
            [lambda t: fastsample.sample(t, **{name: value}),
             lambda t: fastsample.process_logits(t, **{name: value})], name)


@pytest.mark.parametrize("name, text", [("typical_p", r"a number in \(0, 1\]"),
                                        ("epsilon_cutoff", r"a number in \[0, 1\]"),
                                        ("eta_cutoff", r"a number in \[0, 1\]")])
@pytest.mark.parametrize("value, error, pattern", [
    (-0.1, ValueError, r"=-0.1 is out of range; allowed: "),
    (1.5, ValueError, r"=1.5 is out of range; allowed: "),
    (float("nan"), ValueError, r"=nan is out of range; allowed: "),
    ("0.1", TypeError, r" must be a number"),
    ([0.1, 2.0], ValueError, r"\[1\]=2.0 is out of range; allowed: "),
])
def test_bad_values_are_errors_naming_the_field(name, text, value, error, pattern):
    x = torch.randn(2, 10)
    full = name + pattern + (text if error is ValueError else "")
    with pytest.raises(error, match=full):
        fastsample.sample(x, **{name: value})
    with pytest.raises(error, match=full):
        fastsample.process_logits(x, **{name: value})
    if not isinstance(value, list):
        with pytest.raises(error, match=full):
            SamplingParams(**{name: value})
