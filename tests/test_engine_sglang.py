"""fastsample's SGLang sampling backend against SGLang's own code (SGLang 0.5.23, pinned in
.ci/engine-requirements.txt): its Sampler base class, SamplingBatchInfo, SamplingParams,
register_sampler_backend / create_sampler and OutputLogprobProcessor, on the CPU.

What only a GPU build of SGLang exercises (a server, its scheduler, tensor-parallel sync) is
not run here; the runtime context SGLang's launcher publishes is a namespace in these tests.
"""
from types import SimpleNamespace

import pytest
import torch

import fastsample
from serving_engines import import_sglang

sglang_sampler = import_sglang()
from sglang.srt import runtime_context  # noqa: E402
from sglang.srt.layers.logits_processor import LogitsProcessorOutput  # noqa: E402
from sglang.srt.sampling import sampling_batch_info  # noqa: E402
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo  # noqa: E402
from sglang.srt.sampling.sampling_params import TOP_K_ALL, SamplingParams  # noqa: E402

from fastsample.integrations import sglang as backend  # noqa: E402

V = 64


def _exec_bag(sampling_backend):
    return SimpleNamespace(
        kernel=SimpleNamespace(sampling_backend=sampling_backend),
        deterministic=SimpleNamespace(rl_on_policy_target=None,
                                      enable_deterministic_inference=False),
        features=SimpleNamespace(sampling_mask_max_tokens=0, enable_custom_logit_processor=False,
                                 enable_watermark=False))


@pytest.fixture
def runtime(monkeypatch):
    """The process context SGLang's launcher publishes, as the sampler and batch read it."""
    bag = _exec_bag(backend.BACKEND)
    parallel = SimpleNamespace(tp_group=SimpleNamespace(device_group=None))
    for module in (sglang_sampler, runtime_context, sampling_batch_info):
        monkeypatch.setattr(module, "get_exec", lambda: bag)
    monkeypatch.setattr(sglang_sampler, "get_parallel", lambda: parallel)
    monkeypatch.setattr(sglang_sampler, "is_dp_attention_enabled", lambda: False)
    monkeypatch.setattr(sglang_sampler, "get_server_args", lambda: SimpleNamespace())
    return bag


@pytest.fixture
def registered(runtime, monkeypatch):
    """register() as SGLang's plugin loader calls it, undone after the test."""
    from sglang.srt import server_args
    monkeypatch.setattr(server_args, "SAMPLING_BACKEND_CHOICES",
                        set(server_args.SAMPLING_BACKEND_CHOICES))
    monkeypatch.setattr(sglang_sampler, "_CUSTOM_SAMPLER_FACTORIES",
                        dict(sglang_sampler._CUSTOM_SAMPLER_FACTORIES))
    for hook in ("adjusted_from_schedule_batch", "adjusted_filter_batch",
                 "adjusted_merge_batch", "copy_for_forward"):
        monkeypatch.setattr(SamplingBatchInfo, hook, SamplingBatchInfo.__dict__[hook])
    backend.register()
    return runtime


def _params(**kw):
    """SGLang's SamplingParams after its own normalization and validation."""
    p = SamplingParams(**kw)
    p.verify(V)
    return p


def _batch_info(params, seeds=None):
    """SamplingBatchInfo as from_schedule_batch builds it from these requests."""
    top_ks = [p.top_k for p in params]
    return SamplingBatchInfo(
        temperatures=torch.tensor([[p.temperature] for p in params], dtype=torch.float32),
        top_ps=torch.tensor([p.top_p for p in params], dtype=torch.float32),
        top_ks=torch.tensor(top_ks, dtype=torch.int32),
        min_ps=torch.tensor([p.min_p for p in params], dtype=torch.float32),
        is_all_greedy=all(k <= 1 for k in top_ks),
        is_any_greedy=any(k <= 1 for k in top_ks),
        need_top_p_sampling=any(p.top_p != 1.0 for p in params),
        need_top_k_sampling=any(k != TOP_K_ALL for k in top_ks),
        need_min_p_sampling=any(p.min_p > 0 for p in params),
        vocab_size=V,
        sampling_seed=seeds,
        device="cpu",
    )


def _logits(batch, seed=0):
    return torch.randn(batch, V, generator=torch.Generator().manual_seed(seed)) * 3


def _forward(sampler, logits, info, positions, return_logprob=False, top=None):
    out = LogitsProcessorOutput(next_token_logits=logits.clone())
    tokens = sampler(out, info, return_logprob, top or [0] * len(logits),
                     [None] * len(logits), positions)
    return tokens, out


REQUESTS = [dict(temperature=0.7, top_k=20, top_p=0.9, sampling_seed=11),
            dict(temperature=0.0),
            dict(temperature=1.3, min_p=0.05, sampling_seed=-5),
            dict(temperature=1.0, top_p=0.5)]


def test_register_makes_the_backend_selectable(registered):
    from sglang.srt.server_args import SAMPLING_BACKEND_CHOICES
    assert backend.BACKEND in SAMPLING_BACKEND_CHOICES
    sampler = sglang_sampler.create_sampler(backend.BACKEND)
    assert type(sampler) is backend.FastsampleSglangSampler
    assert isinstance(sampler, sglang_sampler.Sampler)
    hooks = dict(SamplingBatchInfo.__dict__)
    backend.register()  # loaded again in the same process: no second layer of hooks
    assert all(SamplingBatchInfo.__dict__[k] is hooks[k] for k in hooks)


def test_tokens_equal_fastsample_sample_on_the_same_parameters(runtime):
    params = [_params(**r) for r in REQUESTS]
    seeds = backend.request_seeds([SimpleNamespace(sampling_params=p) for p in params], "cpu")
    info = _batch_info(params, seeds)
    positions = torch.tensor([5, 9, 2, 40])
    logits = _logits(len(params))
    tokens, out = _forward(backend.FastsampleSglangSampler(), logits, info, positions)
    assert tokens.dtype == torch.int64 and tokens.shape == (4,)
    # SGLang turned temperature 0 into top_k = 1 (T = 1): that row is the argmax.
    assert params[1].top_k == 1 and tokens[1] == logits[1].argmax()
    expected = fastsample.sample(
        logits, temperature=[0.7, 0.0, 1.3, 1.0], top_k=[20, 1, TOP_K_ALL, TOP_K_ALL],
        top_p=[0.9, 1.0, 1.0, 0.5], min_p=[0.0, 0.0, 0.05, 0.0],
        seed=[11, -1, (-5) & (2**63 - 1), -1], offset=[5, 9, 2, 40])
    assert tokens[[0, 1, 2]].tolist() == expected[[0, 1, 2]].tolist()
    assert torch.equal(out.next_token_logits, logits)  # SGLang's own path overwrites it


def test_a_seeded_request_repeats_whatever_shares_its_batch(runtime):
    params = [_params(**r) for r in REQUESTS]
    seeds = backend.request_seeds([SimpleNamespace(sampling_params=p) for p in params], "cpu")
    logits = _logits(4, seed=1)
    sampler = backend.FastsampleSglangSampler()
    drawn = [_forward(sampler, logits, _batch_info(params, seeds), torch.tensor([3, 3, 3, 3]))[0]
             for _ in range(2)]
    # Request 0 alone, then behind another: same seed and position, same token.
    alone = _forward(sampler, logits[:1], _batch_info(params[:1], seeds[:1]), torch.tensor([3]))[0]
    moved = _forward(sampler, logits[[3, 0]], _batch_info([params[3], params[0]], seeds[[3, 0]]),
                     torch.tensor([3, 3]))[0]
    assert drawn[0][0] == drawn[1][0] == alone[0] == moved[1]
    assert drawn[0][2] == drawn[1][2]
    # The position is the Philox offset: a later step is a different draw of the same stream.
    steps = {int(_forward(sampler, logits[:1], _batch_info(params[:1], seeds[:1]),
                          torch.tensor([p]))[0]) for p in range(40)}
    assert len(steps) > 1


def test_greedy_batches_take_sglang_greedy_path(runtime):
    params = [_params(temperature=0.0), _params(top_k=1, temperature=0.8)]
    info = _batch_info(params)
    assert info.is_all_greedy
    logits = _logits(2, seed=2)
    logits[0, 7] = logits[0, 9] = logits[0].max() + 1  # a tie: lowest index, as torch.argmax
    tokens, out = _forward(backend.FastsampleSglangSampler(), logits, info, torch.zeros(2),
                           return_logprob=True, top=[3, 3])
    assert tokens.tolist() == [7, int(logits[1].argmax())]
    reference = sglang_sampler.Sampler()
    ref_tokens, ref_out = _forward(reference, logits, info, torch.zeros(2), True, [3, 3])
    assert torch.equal(tokens, ref_tokens)
    torch.testing.assert_close(out.next_token_logprobs, ref_out.next_token_logprobs)
    assert [list(map(int, t)) for t in out.next_token_top_logprobs_idx] == \
        [list(map(int, t)) for t in ref_out.next_token_top_logprobs_idx]


def test_logprobs_follow_sglangs_contract(runtime, monkeypatch):
    params = [_params(temperature=0.5, top_k=10), _params(temperature=2.0, top_p=0.8)]
    info = _batch_info(params)
    logits = _logits(2, seed=3)
    tokens, out = _forward(backend.FastsampleSglangSampler(), logits, info, torch.tensor([0, 1]),
                           return_logprob=True, top=[2, 4])
    scaled = torch.log_softmax(logits / torch.tensor([[0.5], [2.0]]), dim=-1)
    torch.testing.assert_close(out.next_token_logprobs, scaled[[0, 1], tokens])
    assert [len(v) for v in out.next_token_top_logprobs_val] == [2, 4]
    assert out.next_token_top_logprobs_idx[1].tolist() == scaled[1].topk(4).indices.tolist()
    monkeypatch.setattr(sglang_sampler, "SGLANG_RETURN_ORIGINAL_LOGPROB", True)
    drawn, original = _forward(backend.FastsampleSglangSampler(), logits, info,
                               torch.tensor([0, 1]), return_logprob=True, top=[1, 1])
    torch.testing.assert_close(original.next_token_logprobs,
                               torch.log_softmax(logits, -1)[[0, 1], drawn])


@pytest.mark.parametrize("original", [False, True])
def test_logprobs_equal_sglangs_own_backend(runtime, monkeypatch, original):
    """Rows whose draw is all but certain (the top token 25 above the rest, top_k 2: the other
    kept token's chance is below 1e-7): both backends emit the same tokens, and the logprobs
    must be SGLang's pytorch backend's (softmax stays above float32's underflow here)."""
    monkeypatch.setattr(sglang_sampler, "SGLANG_RETURN_ORIGINAL_LOGPROB", original)
    params = [_params(temperature=0.5, top_k=2), _params(temperature=1.5, top_k=2, top_p=0.9),
              _params(temperature=0.0)]
    info = _batch_info(params)
    logits = _logits(3, seed=8)
    logits[torch.arange(3), torch.tensor([4, 17, 30])] += 25.0
    ours, out = _forward(backend.FastsampleSglangSampler(), logits, info, torch.tensor([0, 1, 2]),
                         return_logprob=True, top=[3, 3, 3])
    runtime.kernel.sampling_backend = "pytorch"
    theirs, ref = _forward(sglang_sampler.Sampler(), logits, info, torch.tensor([0, 1, 2]),
                           return_logprob=True, top=[3, 3, 3])
    assert ours.tolist() == theirs.tolist() == [4, 17, 30]
    torch.testing.assert_close(out.next_token_logprobs, ref.next_token_logprobs,
                               rtol=1e-5, atol=1e-5)
    assert [t.tolist() for t in out.next_token_top_logprobs_idx] == \
        [t.tolist() for t in ref.next_token_top_logprobs_idx]
    for a, b in zip(out.next_token_top_logprobs_val, ref.next_token_top_logprobs_val):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_row_without_a_valid_token_gets_its_argmax(runtime):
    """Rows of -inf or NaN (a grammar or a model fault) get token 0, as torch's argmax (the
    greedy path) gives them, and the step goes on."""
    params = [_params(temperature=0.9)] * 3
    logits = _logits(3, seed=4)
    logits[1] = float("-inf")
    logits[2] = float("nan")
    tokens, _ = _forward(backend.FastsampleSglangSampler(), logits.clone(), _batch_info(params),
                         torch.tensor([0, 0, 0]))
    assert 0 <= tokens[0] < V
    assert tokens[1:].tolist() == logits[1:].argmax(dim=-1).tolist() == [0, 0]


def test_sglang_validation_still_runs():
    with pytest.raises(ValueError, match="top_p"):
        _params(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        _params(temperature=-1.0)
    with pytest.raises(ValueError, match="min_p"):
        _params(min_p=1.5)


def test_refuses_what_it_cannot_produce(runtime):
    params = [_params(temperature=0.9)]
    info = _batch_info(params, seeds=torch.tensor([1, 2]))
    info.fastsample_seeds = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="request seeds have shape"):
        _forward(backend.FastsampleSglangSampler(), _logits(1), info, torch.tensor([0]))
    info = _batch_info(params)
    info.sampling_mask_batch_indices = torch.tensor([0])
    with pytest.raises(ValueError, match="sampling masks"):
        _forward(backend.FastsampleSglangSampler(), _logits(1), info, torch.tensor([0]))


class _Req:
    def __init__(self, params):
        self.sampling_params = params
        self.custom_logit_processor = None
        self.return_sampling_mask = False
        self.sampling_logprobs_mode = None


class _ScheduleBatch:
    """What SamplingBatchInfo.from_schedule_batch reads of a ScheduleBatch."""

    def __init__(self, params):
        self.reqs = [_Req(p) for p in params]
        self.device = "cpu"


def test_batches_keep_request_seeds_for_this_backend(registered):
    params = [_params(temperature=0.8, sampling_seed=3), _params(temperature=0.8),
              _params(temperature=0.8, sampling_seed=-1)]
    info = SamplingBatchInfo.from_schedule_batch(_ScheduleBatch(params), V)
    # Not SGLang's sampling_seed, which would make its EAGLE draws deterministic.
    assert info.sampling_seed is None
    assert info.fastsample_seeds.tolist() == [3, -1, 2**63 - 1]
    assert info.copy_for_forward().fastsample_seeds.tolist() == [3, -1, 2**63 - 1]
    info.filter_batch([0, 2], torch.tensor([0, 2]))
    assert info.fastsample_seeds.tolist() == [3, 2**63 - 1]
    other = SamplingBatchInfo.from_schedule_batch(_ScheduleBatch([_params(sampling_seed=9)]), V)
    info.merge_batch(other)
    assert len(info) == 3 and info.fastsample_seeds.tolist() == [3, 2**63 - 1, 9]
    registered.kernel.sampling_backend = "pytorch"  # another backend: SGLang's own behaviour
    plain = SamplingBatchInfo.from_schedule_batch(_ScheduleBatch(params), V)
    assert getattr(plain, "fastsample_seeds", None) is None and plain.sampling_seed is None
    info.merge_batch(plain)  # a batch without seeds joins: its rows are unseeded
    assert info.fastsample_seeds.tolist() == [3, 2**63 - 1, 9, -1, -1, -1]


def test_the_sampler_draws_from_the_kept_seeds(registered):
    params = [_params(temperature=0.8, sampling_seed=3), _params(temperature=0.8, top_p=0.7)]
    info = SamplingBatchInfo.from_schedule_batch(_ScheduleBatch(params), V)
    logits = _logits(2, seed=9)
    tokens, _ = _forward(backend.FastsampleSglangSampler(), logits, info, torch.tensor([12, 4]))
    assert tokens[0] == fastsample.sample(logits[:1], temperature=0.8, seed=3, offset=12)[0]


def test_a_step_on_the_device_waits_for_nothing(runtime, device):
    """On a GPU, torch's sync debug mode turns any host sync in the step into an error."""
    params = [_params(**r) for r in REQUESTS]
    seeds = backend.request_seeds([SimpleNamespace(sampling_params=p) for p in params], device)
    info = _batch_info(params)
    for name in ("temperatures", "top_ps", "top_ks", "min_ps"):
        setattr(info, name, getattr(info, name).to(device))
    info.fastsample_seeds = seeds
    logits = _logits(4, seed=12).to(device)
    positions = torch.tensor([5, 9, 2, 40], device=device)
    sampler = backend.FastsampleSglangSampler()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        tokens, _ = _forward(sampler, logits, info, positions)
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    assert tokens.device == logits.device and tokens[1] == logits[1].argmax()
