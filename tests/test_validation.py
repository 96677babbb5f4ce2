"""Every rejected input: ValueError/TypeError naming the field, the value and the range."""
import math

import numpy as np
import pytest
import torch

import fastsample

X = torch.randn(2, 50)


@pytest.mark.parametrize("fn", [fastsample.sample, fastsample.process_logits,
                                fastsample.reference.sample, fastsample.reference.process_logits])
@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(temperature=-0.1), ValueError, r"temperature=-0.1 is out of range.*>= 0"),
    (dict(temperature=math.nan), ValueError, r"temperature=nan is out of range"),
    (dict(temperature=math.inf), ValueError, r"temperature=inf is out of range"),
    (dict(temperature="hot"), TypeError, r"temperature"),
    (dict(temperature=True), TypeError, r"temperature must be a number"),
    (dict(top_k=-2), ValueError, r"top_k=-2 is out of range.*-1 or 0"),
    (dict(top_k=2.5), TypeError, r"top_k must be an int"),
    (dict(top_p=0.0), ValueError, r"top_p=0.0 is out of range.*\(0, 1\]"),
    (dict(top_p=1.01), ValueError, r"top_p=1.01 is out of range"),
    (dict(min_p=-0.01), ValueError, r"min_p=-0.01 is out of range.*\[0, 1\]"),
    (dict(min_p=1.5), ValueError, r"min_p=1.5 is out of range"),
    (dict(top_p=[0.5]), ValueError, r"top_p: per-row values must have shape \[2\]"),
    (dict(top_p=[0.5, 2.0]), ValueError, r"top_p\[1\]=2.0 is out of range"),
    (dict(top_k=torch.tensor([1.0, 2.0])), TypeError, r"top_k: per-row values must be integers"),
    (dict(temperature=[0.5, "x"]), TypeError, r"temperature: every per-row value must be a number"),
    (dict(top_k=[3, -5]), ValueError, r"top_k\[1\]=-5 is out of range"),
    (dict(temperature=np.array([1.0, np.nan])), ValueError, r"temperature\[1\]=nan"),
])
def test_bad_parameters(fn, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(X, **kwargs)


@pytest.mark.parametrize("logits, exc, pattern", [
    ([[1.0, 2.0]], TypeError, r"logits must be a torch.Tensor or numpy.ndarray"),
    (torch.randn(5), ValueError, r"shape \[B, V\].*unsqueeze"),
    (torch.randn(2, 3, 4), ValueError, r"shape \[B, V\]"),
    (torch.randn(2, 0), ValueError, r"V=0 is out of range"),
    (torch.randint(0, 5, (2, 5)), TypeError, r"dtype torch.int64 is not supported"),
    (np.zeros((2, 5), dtype=np.float64), TypeError, r"numpy dtype float64"),
])
def test_bad_logits(logits, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastsample.sample(logits)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(seed=-5), ValueError, r"seed=-5 is out of range"),
    (dict(seed=2**64), ValueError, r"seed=18446744073709551616 is out of range"),
    (dict(seed=1.5), TypeError, r"seed must be an int"),
    (dict(seed=[1]), ValueError, r"seed: per-row values must have length 2"),
    (dict(seed=[1, "a"]), TypeError, r"seed\[1\] must be an int"),
    (dict(offset=-1), ValueError, r"offset=-1 is out of range"),
    (dict(seed=1, offset=[0, -3]), ValueError, r"offset\[1\]=-3 is out of range"),
    (dict(generator=123), TypeError, r"generator must be a torch.Generator"),
])
def test_bad_seeds(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastsample.sample(X, **kwargs)


def test_boundaries_accepted():
    for kw in [dict(temperature=0.0), dict(top_k=-1), dict(top_k=0), dict(top_k=10**9),
               dict(top_p=1.0), dict(top_p=1e-9), dict(min_p=0.0), dict(min_p=1.0),
               dict(seed=0), dict(seed=2**63 - 1), dict(seed=-1), dict(seed=[None, 5])]:
        assert fastsample.sample(X, **kw).shape == (2,)


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match=r"num_threads=0 is out of range"):
        fastsample.set_num_threads(0)
    with pytest.raises(TypeError, match=r"num_threads must be an int"):
        fastsample.set_num_threads(1.5)


def test_build_info():
    info = fastsample.build_info()
    assert info["version"] == fastsample.__version__
    assert "cpu" in info["backends"]
    assert info["simd"] in ("avx2", "baseline")
    assert info["num_threads"] >= 1


# Inputs fuzzing found crashing with the wrong exception (RuntimeError, NotImplementedError,
# AttributeError) or an error that named no field: each names the caller's field now.
@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: fastsample.sample(X, frequency_penalty=1.0, output_token_ids=[[1], [2]],
                               output_token_counts=[[2**31], [1]]),
     ValueError, r"output_token_counts\[0\]\[0\]=2147483648 is out of range"),
    (lambda: fastsample.sample(X, frequency_penalty=1.0, output_token_ids=[[1], [2]],
                               output_token_counts="x"),
     TypeError, r"output_token_counts must be an integer tensor"),
    (lambda: fastsample.prompt_logprobs(X, [math.inf, 1]), TypeError, r"target_ids\[0\]=inf"),
    (lambda: fastsample.prompt_logprobs(X, None), TypeError, r"target_ids must be a list"),
    (lambda: fastsample.prompt_logprobs(X, torch.tensor([0.0, 1.0])), TypeError,
     r"target_ids must be integer token ids"),
    (lambda: fastsample.sample(torch.empty(2, 50, device="meta")), ValueError,
     r"logits: a meta tensor holds no values"),
    (lambda: fastsample.process_logits(torch.empty(2, 50, device="meta")), ValueError,
     r"logits: a meta tensor"),
    (lambda: fastsample.sample(X, temperature=torch.ones(2, device="meta")), ValueError,
     r"temperature: a meta tensor"),
    (lambda: fastsample.sample(X, min_tokens=1, stop_token_ids=5), TypeError,
     r"stop_token_ids must be a list of token ids"),
    (lambda: fastsample.sample(X, top_k=[2**64, 1]), ValueError,
     r"top_k\[0\]=18446744073709551616 is out of range"),
    (lambda: fastsample.sample(X, top_k=np.array([2**64 - 1, 1], dtype=np.uint64)), ValueError,
     r"top_k: per-row value 18446744073709551615 is out of range"),
    (lambda: fastsample.sample(X, temperature=np.array(["a", "b"])), TypeError,
     r"temperature: per-row values must be numbers, got a numpy array of dtype <U1"),
    (lambda: fastsample.sample(X, min_tokens=1, eos_token_id=50), ValueError,
     r"eos_token_id=50 is out of range"),
    (lambda: fastsample.sample(X, min_tokens=1, eos_token_id="2"), TypeError,
     r"eos_token_id must be an int"),
    (lambda: fastsample.sample(X, token_bitmask=torch.empty(2, 2, dtype=torch.int32,
                                                            device="meta")),
     ValueError, r"token_bitmask: a meta tensor"),
])
def test_errors_name_the_callers_field(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
