"""fastsample.SamplingParams: core ranges (each boundary on both sides), immutability, repr,
distribution-valued fields, and SamplingBatch."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import fastsample
from fastsample import Manual, SamplingBatch, SamplingParams, Uniform

# (field, accepted boundary values, rejected values just outside)
BOUNDARIES = [
    ("temperature", [0.0, 1e-6, 1e30], [-1e-9, math.inf, math.nan]),
    ("top_k", [-1, 0, 1, 10**9], [-2]),
    ("top_p", [1e-9, 1.0], [0.0, 1.0 + 1e-9, -0.5]),
    ("min_p", [0.0, 1.0], [-1e-9, 1.0 + 1e-9]),
    ("repetition_penalty", [1e-9, 1.0, 5.0], [0.0, -1.0, math.inf]),
    ("presence_penalty", [-1e6, 0.0, 1e6], [math.inf, math.nan]),
    ("frequency_penalty", [-2.0, 2.0], [-math.inf]),
    ("logprobs", [0, 20], [-1, 21]),
    ("prompt_logprobs", [0, 20], [-1, 21]),
    ("max_tokens", [1, 10**6], [0, -5]),
    ("min_tokens", [0, 3], [-1]),
]


@pytest.mark.parametrize("name,good,bad", BOUNDARIES)
def test_core_range_boundaries(name, good, bad):
    for v in good:
        assert getattr(SamplingParams(**{name: v}), name) == v
    for v in bad:
        with pytest.raises(ValueError) as err:
            SamplingParams(**{name: v})
        assert name in str(err.value) and "allowed" in str(err.value)


@pytest.mark.parametrize("name,value", [("top_k", 2.5), ("temperature", "hot"), ("top_k", True),
                                        ("seed", 1.5), ("ignore_eos", 1), ("max_tokens", 3.0)])
def test_wrong_types_raise_type_error(name, value):
    with pytest.raises(TypeError) as err:
        SamplingParams(**{name: value})
    assert name in str(err.value)


def test_cross_field_and_list_checks():
    assert SamplingParams(max_tokens=5, min_tokens=5).min_tokens == 5
    with pytest.raises(ValueError, match="min_tokens=6 is out of range; allowed: 0 <= min_tokens <= max_tokens"):
        SamplingParams(max_tokens=5, min_tokens=6)
    with pytest.raises(ValueError, match=r"stop_token_ids\[1\]"):
        SamplingParams(stop_token_ids=[3, -1])
    with pytest.raises(ValueError, match=r"stop\[0\]"):
        SamplingParams(stop=[""])
    with pytest.raises(ValueError, match="logprobs_mode"):
        SamplingParams(logprobs_mode="final")
    with pytest.raises(ValueError, match="seed"):
        SamplingParams(seed=2**63)


def test_normalized_values_and_immutability():
    p = SamplingParams(seed=-1, stop="END", logit_bias={"7": 250, 3: -1000.5, 9: 0.5})
    assert p.seed is None and p.stop == ("END",)
    assert dict(p.logit_bias) == {3: -100.0, 7: 100.0, 9: 0.5}
    with pytest.raises(Exception):
        p.temperature = 0.5
    with pytest.raises(TypeError):
        p.metadata["x"] = 1


def test_repr_shows_only_what_differs_from_defaults():
    assert repr(SamplingParams()) == "SamplingParams()"
    assert repr(SamplingParams(temperature=0.7, top_p=0.9, seed=3)) == \
        "SamplingParams(temperature=0.7, top_p=0.9, seed=3)"


def test_distribution_support_must_lie_in_range():
    SamplingParams(top_p=Uniform(0.5, 1.0))
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=Uniform(0.0, 1.0))
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=Manual([0.5, -1.0]))
    with pytest.raises(ValueError, match="low"):
        Uniform(1.0, 0.5)
    with pytest.raises(ValueError, match="weights"):
        Manual([0.1, 0.2], weights=[1.0])


def test_serialized_distributions_are_accepted():
    p = SamplingParams(
        temperature={"distribution_type": "uniform", "params": {"low": 0.5, "high": 0.9}},
        top_p={"distribution_type": "manual", "params": {"values": [0.8, 0.95], "weights": [3, 1]}})
    assert p.temperature == Uniform(0.5, 0.9)
    assert p.top_p == Manual([0.8, 0.95], [0.75, 0.25])
    assert p.temperature.to_dict()["params"] == {"low": 0.5, "high": 0.9}
    with pytest.raises(ValueError, match="distribution_type='normal'"):
        SamplingParams(temperature={"distribution_type": "normal", "params": {}})


def test_resolve_is_reproducible_by_seed():
    p = SamplingParams(temperature=Uniform(0.2, 1.2), top_p=Manual([0.5, 0.9]))
    assert not p.is_resolved
    a, b, c = p.resolve(seed=11), p.resolve(seed=11), p.resolve(seed=12)
    assert a == b and a.is_resolved and a != c
    assert SamplingParams(temperature=0.3).resolve(5) == SamplingParams(temperature=0.3)


def test_uniform_draws_stay_in_bounds_and_fill_them():
    # 2000 seeds; the sample must stay within [low, high] and pass a KS test (p > 1e-3).
    d = Uniform(0.3, 1.1)
    p = SamplingParams(temperature=d)
    draws = np.array([p.resolve(seed=s).temperature for s in range(2000)])
    assert draws.min() >= 0.3 and draws.max() <= 1.1
    assert stats.kstest(draws, stats.uniform(loc=0.3, scale=0.8).cdf).pvalue > 1e-3


def test_manual_draws_follow_weights():
    # Chi-square of 4000 draws against the normalized weights; fixed seeds, p > 1e-3.
    values, weights = [0.5, 0.7, 0.9], [1.0, 2.0, 5.0]
    p = SamplingParams(top_p=Manual(values, weights))
    draws = [p.resolve(seed=s).top_p for s in range(4000)]
    counts = np.array([draws.count(v) for v in values])
    expected = np.array(weights) / sum(weights) * len(draws)
    assert counts.sum() == len(draws)
    assert stats.chisquare(counts, expected).pvalue > 1e-3


def test_sampling_batch_tensors_flags_and_reuse():
    rows = [SamplingParams(temperature=0.0), SamplingParams(temperature=0.7, top_k=40, seed=9),
            SamplingParams(top_p=0.9, repetition_penalty=1.2, logprobs=5)]
    batch = SamplingBatch(rows, generator=torch.Generator().manual_seed(0))
    assert batch.temperature.tolist() == pytest.approx([0.0, 0.7, 1.0])
    assert batch.top_k.tolist() == [0, 40, 0] and batch.seed[1].item() == 9
    assert batch.temperature.dtype == torch.float32 and batch.seed.dtype == torch.int64
    assert batch.flags.any_greedy and not batch.flags.all_greedy
    assert batch.flags.any_top_k and batch.flags.any_top_p and batch.flags.any_penalties
    assert batch.flags.max_logprobs == 5 and not batch.flags.any_logit_bias
    assert batch.update(rows) is batch
    assert batch.update(rows[:2]) is not batch
    # Penalties and logprobs need a history and outputs: never dropped silently.
    with pytest.raises(ValueError, match=r"rows \{2: \['repetition_penalty', 'logprobs'\]\}"):
        batch.filter_kwargs()


def test_sampling_batch_gives_each_row_a_stream():
    rows = [SamplingParams(temperature=0.0), SamplingParams(temperature=0.7, top_k=40, seed=9),
            SamplingParams(top_p=0.9, top_n_sigma=2.0)]
    batch = SamplingBatch(rows, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(3, 500, generator=torch.Generator().manual_seed(1))
    # Unseeded rows keep the seed drawn at build time: the same step samples reproducibly.
    first = fastsample.sample(logits, **batch.filter_kwargs())
    assert torch.equal(first, fastsample.sample(logits, **batch.filter_kwargs()))
    assert first[0].item() == int(logits[0].argmax())
    steps = [first]
    for step in range(1, 6):
        batch.advance()
        assert batch.offset.tolist() == [step] * 3
        steps.append(fastsample.sample(logits, **batch.filter_kwargs()))
    # Each step draws the next number of each row's stream: the sampled rows move (fixed seeds:
    # deterministic), and step 3 is what seed and offset 3 give directly.
    assert len({int(t[1]) for t in steps}) > 1 and len({int(t[2]) for t in steps}) > 1
    direct = fastsample.sample(logits, temperature=batch.temperature, top_k=batch.top_k,
                               top_p=batch.top_p, top_n_sigma=batch.top_n_sigma,
                               seed=batch.seed, offset=3)
    assert torch.equal(direct, steps[3])


def test_sampling_batch_resolves_each_request_once():
    p = SamplingParams(temperature=Uniform(0.1, 2.0), seed=4)
    batch = SamplingBatch([p, p])
    assert batch.params[0].temperature == batch.params[1].temperature == p.resolve().temperature
    with pytest.raises(TypeError, match=r"params\[0\]"):
        SamplingBatch([{"temperature": 1.0}])
