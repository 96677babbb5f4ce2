"""What a CUDA user sees when the kernels cannot run: no silent fallback to the reference
without a warning, a clear error (driver vs runtime versions, what to do) instead of a
confusing first launch, and a Sampler that refuses a device it cannot use. These need no GPU:
the runtime's answers are stood in for."""
import warnings

import pytest
import torch

import fastsample
from fastsample.kernel import cuda


@pytest.fixture
def fresh_status():
    cuda.runtime_status.cache_clear()
    cuda._warn_reference_on_cuda.cache_clear()
    yield
    cuda.runtime_status.cache_clear()
    cuda._warn_reference_on_cuda.cache_clear()


def test_build_info_reports_cuda_versions():
    info = fastsample.build_info()
    st = cuda.runtime_status()
    assert (info["cuda_driver"], info["cuda_runtime"]) == (st.driver, st.runtime)
    if not info["cuda_enabled"]:
        assert info["cuda_runtime"] is None
    else:
        assert info["cuda_runtime"] is not None and "." in info["cuda_runtime"]


def test_cuda_tensors_without_cuda_kernels_warn_once(monkeypatch, fresh_status):
    monkeypatch.setattr(cuda, "COMPILED", False)
    with pytest.warns(RuntimeWarning, match="built without CUDA kernels.*FASTSAMPLE_CUDA=ON"):
        assert not cuda.runs_on(torch.device("cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cuda.runs_on(torch.device("cuda"))  # once per process
        assert not cuda.runs_on(torch.device("cpu"))


def test_old_driver_is_named_with_what_to_do(monkeypatch, fresh_status):
    monkeypatch.setattr(cuda, "COMPILED", True)
    monkeypatch.setattr(cuda._C, "cuda_runtime_status",
                        lambda: (12040, 13000, 0, "CUDA driver version is insufficient for "
                                                  "CUDA runtime version"), raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert cuda.runtime_status() == ("12.4", "13.0", 0, "CUDA driver version is insufficient "
                                                         "for CUDA runtime version")
    with pytest.raises(RuntimeError, match=r"driver supports CUDA 12.4, older than the CUDA "
                                           r"13.0 runtime.*driver >= 580"):
        cuda.runs_on(torch.device("cuda"))
    with pytest.raises(ValueError, match=r"device='cuda': the CUDA driver supports CUDA 12.4"):
        fastsample.Sampler(100, device="cuda")


def test_sampler_refuses_a_device_it_cannot_use(monkeypatch, fresh_status):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    with pytest.raises(ValueError, match=r"device='cuda': torch sees no GPU"):
        fastsample.Sampler(100, device="cuda")
    with pytest.raises(ValueError, match=r"device='meta': the Sampler runs on 'cpu' or 'cuda'"):
        fastsample.Sampler(100, device="meta")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "COMPILED", False)
    with pytest.raises(ValueError, match="built without CUDA kernels"):
        fastsample.Sampler(100, device="cuda")


def test_reference_route_honours_every_argument(monkeypatch):
    """Where no compiled kernel runs (a CUDA tensor in a build without CUDA kernels), the
    reference takes the whole call: penalties, masks and logprobs included, never dropped."""
    monkeypatch.setattr(fastsample.kernel.launch, "runs_compiled", lambda logits: False)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 50, generator=g)
    top = int(x[0].argmax())
    kw = dict(temperature=0.0, banned_token_ids=[top], repetition_penalty=1.5,
              prompt_token_ids=[[1, 2]] * 3, logprobs=2)
    out = fastsample.sample(x, **kw)
    want = fastsample.reference.sample(x, **kw)
    assert int(out.tokens[0]) != top
    assert torch.equal(out.tokens, want.tokens) and torch.equal(out.top_ids, want.top_ids)
    processed = fastsample.process_logits(x, banned_token_ids=[top], top_k=5)
    assert processed[0, top] == float("-inf")
    assert torch.equal(processed, fastsample.reference.process_logits(
        x, banned_token_ids=[top], top_k=5))
