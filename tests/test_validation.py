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
