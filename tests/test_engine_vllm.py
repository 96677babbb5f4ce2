"""fastsample's vLLM plugins against vLLM's own code (vLLM 0.33.0, pinned in
.ci/engine-requirements.txt): its V1 Sampler (forward, logprobs modes), SamplingMetadata,
SamplingParams validation, MinPLogitsProcessor, BatchUpdate and the V1 logits-processor
interface, on the CPU (vLLM's "unspecified" platform: its torch fallbacks, no vllm._C).

Not run here: a vLLM engine (model runner, scheduler, CUDA graphs), which needs a GPU build.
"""
import sys
from types import SimpleNamespace

import pytest
import torch

import fastsample
from fastsample.requests.arguments import draw_seeds
from serving_engines import import_vllm

import_vllm()
from vllm.sampling_params import SamplingParams  # noqa: E402
from vllm.v1.sample import sampler as vllm_sampler  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessors  # noqa: E402
from vllm.v1.sample.logits_processor.builtin import MinPLogitsProcessor  # noqa: E402
from vllm.v1.sample.metadata import SamplingMetadata  # noqa: E402

from fastsample.integrations import vllm as plugin  # noqa: E402
from fastsample.integrations import vllm_history  # noqa: E402

V = 64
CONFIG = SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=16))


def _min_p(params):
    """vLLM's own min-p processor, told about the batch as vLLM's input batch tells it."""
    processor = MinPLogitsProcessor(CONFIG, torch.device("cpu"), False)
    added = [(i, p, [], []) for i, p in enumerate(params)]
    processor.update_state(BatchUpdate(len(params), [], added, []))
    return processor


def _metadata(params, generators=None, max_num_logprobs=None):
    """SamplingMetadata as vLLM's InputBatch builds it from these requests."""
    temperature = torch.tensor([p.temperature for p in params], dtype=torch.float32)
    greedy = [p.temperature < plugin.GREEDY_BELOW for p in params]
    B = len(params)
    return SamplingMetadata(
        temperature=temperature, all_greedy=all(greedy), all_random=not any(greedy),
        top_p=torch.tensor([p.top_p for p in params], dtype=torch.float32),
        top_k=torch.tensor([p.top_k if p.top_k > 0 else V for p in params], dtype=torch.int32),
        generators=generators or {}, max_num_logprobs=max_num_logprobs, no_penalties=True,
        prompt_token_ids=None, frequency_penalties=torch.zeros(B),
        presence_penalties=torch.zeros(B), repetition_penalties=torch.ones(B),
        output_token_ids=[[] for _ in params], allowed_token_ids_mask=None,
        bad_words_token_ids={}, logitsprocs=LogitsProcessors([_min_p(params)]))


def _logits(batch, seed=0):
    return torch.randn(batch, V, generator=torch.Generator().manual_seed(seed)) * 3


def _generator(seed):
    return torch.Generator().manual_seed(seed)


REQUESTS = [SamplingParams(temperature=0.7, top_k=20, top_p=0.9, seed=11),
            SamplingParams(temperature=0.0),
            SamplingParams(temperature=1.3, min_p=0.05, seed=4),
            SamplingParams(temperature=1.0, top_p=0.5)]


def test_register_is_opt_in(monkeypatch):
    monkeypatch.setattr(vllm_sampler, "Sampler", vllm_sampler.Sampler)
    original = vllm_sampler.Sampler
    monkeypatch.delenv(plugin.OPT_IN, raising=False)
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    plugin.register()
    assert vllm_sampler.Sampler is original
    monkeypatch.setenv(plugin.OPT_IN, "1")
    plugin.register()
    assert vllm_sampler.Sampler is plugin.FastsampleSampler
    import os
    assert os.environ["VLLM_USE_V2_MODEL_RUNNER"] == "0"
    monkeypatch.setenv("VLLM_USE_V2_MODEL_RUNNER", "1")
    with pytest.raises(ValueError, match="V2"):
        plugin.register()
    monkeypatch.setenv(plugin.OPT_IN, "yes")
    with pytest.raises(ValueError, match="FASTSAMPLE_VLLM_SAMPLER='yes'"):
        plugin.register()


def test_the_entry_point_is_declared():
    import pathlib
    import tomllib
    project = tomllib.loads((pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["vllm.general_plugins"]["fastsample"]
    assert target == "fastsample.integrations.vllm:register"
    target = project["project"]["entry-points"]["sglang.srt.plugins"]["fastsample"]
    assert target == "fastsample.integrations.sglang:register"


def test_tokens_equal_fastsample_sample_on_the_same_parameters():
    logits = _logits(4)
    md = _metadata(REQUESTS, generators={0: _generator(11), 2: _generator(4)})
    tokens, processed = plugin.FastsampleSampler().sample(logits.clone(), md)
    assert processed is None and tokens.dtype == torch.int64
    seed = lambda s: int(draw_seeds(torch.empty(1, dtype=torch.int64), _generator(s))[0])  # noqa
    expected = fastsample.sample(
        logits, temperature=[0.7, 0.0, 1.3, 1.0], top_k=[20, V, V, V],
        top_p=[0.9, 1.0, 1.0, 0.5], min_p=[0.0, 0.0, 0.05, 0.0], seed=[seed(11), -1, seed(4), -1])
    assert tokens[[0, 1, 2]].tolist() == expected[[0, 1, 2]].tolist()
    assert tokens[1] == logits[1].argmax()


def test_seeded_requests_repeat_whatever_shares_their_batch():
    logits = _logits(4, seed=1)
    first = plugin.FastsampleSampler().sample(
        logits.clone(), _metadata(REQUESTS, {0: _generator(11), 2: _generator(4)}))[0]
    again = plugin.FastsampleSampler().sample(
        logits.clone(), _metadata(REQUESTS, {0: _generator(11), 2: _generator(4)}))[0]
    alone = plugin.FastsampleSampler().sample(
        logits[[2]].clone(), _metadata([REQUESTS[2]], {0: _generator(4)}))[0]
    assert first[[0, 2]].tolist() == again[[0, 2]].tolist() and alone[0] == first[2]
    # The generator advances one draw per step: the next step is another draw.
    g = _generator(11)
    steps = {int(plugin.FastsampleSampler().sample(logits[[0]].clone(),
                                                   _metadata([REQUESTS[0]], {0: g}))[0][0])
             for _ in range(30)}
    assert len(steps) > 1


@pytest.mark.parametrize("mode", ["raw_logprobs", "processed_logprobs"])
def test_greedy_rows_equal_vllms_sampler(mode):
    # A mixed batch takes the plugin's path; its greedy rows must be vLLM's argmax.
    params = [SamplingParams(temperature=0.0), SamplingParams(temperature=0.8),
              SamplingParams(temperature=0.0)]
    logits = _logits(3, seed=2)
    logits[0, 7] = logits[0, 9] = logits[0].max() + 1
    ours = plugin.FastsampleSampler(logprobs_mode=mode)(logits.clone(), _metadata(params, None, 2))
    theirs = vllm_sampler.Sampler(logprobs_mode=mode)(logits.clone(), _metadata(params, None, 2))
    tokens = ours.sampled_token_ids.view(-1)
    assert tokens[[0, 2]].tolist() == [7, int(logits[2].argmax())]
    assert torch.equal(tokens[[0, 2]], theirs.sampled_token_ids.view(-1)[[0, 2]])
    for row in (0, 2):
        torch.testing.assert_close(ours.logprobs_tensors.logprobs[row],
                                   theirs.logprobs_tensors.logprobs[row])


def test_all_greedy_batches_are_vllms_own_path():
    params = [SamplingParams(temperature=0.0)] * 2
    logits = _logits(2, seed=2)
    out = plugin.FastsampleSampler()(logits.clone(), _metadata(params, None, 1))
    assert out.sampled_token_ids.view(-1).tolist() == logits.argmax(-1).tolist()


def test_raw_logprobs_are_vllms_own():
    logits = _logits(4, seed=3)
    out = plugin.FastsampleSampler()(logits.clone(), _metadata(REQUESTS, None, 3))
    tokens = out.sampled_token_ids.view(-1)
    raw = torch.log_softmax(logits, -1)
    torch.testing.assert_close(out.logprobs_tensors.logprobs[:, 0], raw[torch.arange(4), tokens])
    assert out.logprobs_tensors.logprob_token_ids[:, 1:].tolist() == raw.topk(3).indices.tolist()


# Rows where vLLM's filters and fastsample's agree exactly: not both min_p and top_p.
AGREEING = [SamplingParams(temperature=0.7, top_k=20), SamplingParams(temperature=1.3, top_p=0.6),
            SamplingParams(temperature=0.9, top_k=8, top_p=0.8),
            SamplingParams(temperature=1.1, min_p=0.1), SamplingParams(temperature=0.0)]


@pytest.mark.parametrize("mode", ["processed_logits", "processed_logprobs"])
def test_processed_logprobs_equal_vllms_own(mode):
    logits = _logits(len(AGREEING), seed=5)
    ours = plugin.FastsampleSampler(logprobs_mode=mode).sample(
        logits.clone(), _metadata(AGREEING, None, 2))[1]
    theirs = vllm_sampler.Sampler(logprobs_mode=mode).sample(
        logits.clone(), _metadata(AGREEING, None, 2))[1]
    assert torch.equal(ours.isfinite(), theirs.isfinite())
    torch.testing.assert_close(ours[ours.isfinite()], theirs[theirs.isfinite()],
                               rtol=1e-5, atol=1e-5)


def _doubling_processor():
    """A custom argmax-invariant processor (scales every logit by 2), as a plugin would add."""
    from vllm.v1.sample.logits_processor import LogitsProcessor

    class Doubling(LogitsProcessor):
        def __init__(self):
            pass

        def is_argmax_invariant(self):
            return True

        def update_state(self, batch_update):
            pass

        def apply(self, logits):
            return logits * 2

    return Doubling()


@pytest.mark.parametrize("mode", ["processed_logits", "processed_logprobs"])
def test_other_argmax_invariant_processors_run_as_in_vllm(mode):
    logits = _logits(len(AGREEING), seed=10)

    def metadata():
        md = _metadata(AGREEING, None, 2)
        md.logitsprocs = LogitsProcessors([_min_p(AGREEING), _doubling_processor()])
        return md

    ours = plugin.FastsampleSampler(logprobs_mode=mode).sample(logits.clone(), metadata())[1]
    theirs = vllm_sampler.Sampler(logprobs_mode=mode).sample(logits.clone(), metadata())[1]
    assert torch.equal(ours.isfinite(), theirs.isfinite())
    torch.testing.assert_close(ours[ours.isfinite()], theirs[theirs.isfinite()],
                               rtol=1e-5, atol=1e-5)


def test_register_rebinds_an_imported_model_runner(monkeypatch):
    import types
    runner = types.ModuleType("vllm.v1.worker.gpu_model_runner")
    runner.Sampler = vllm_sampler.Sampler
    monkeypatch.setitem(sys.modules, "vllm.v1.worker.gpu_model_runner", runner)
    monkeypatch.setattr(vllm_sampler, "Sampler", vllm_sampler.Sampler)
    monkeypatch.setenv(plugin.OPT_IN, "1")
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    plugin.register()
    assert runner.Sampler is plugin.FastsampleSampler


def test_vllms_own_validation_still_runs():
    from vllm.exceptions import VLLMValidationError
    for bad in (dict(top_p=0.0), dict(temperature=3.0), dict(min_p=1.5), dict(top_k=-2)):
        with pytest.raises(VLLMValidationError, match=next(iter(bad))):
            SamplingParams(**bad)


def _history_edits(params, prompts, outputs):
    processor = vllm_history.HistoryEdits(CONFIG, torch.device("cpu"), False)
    added = [(i, p, prompts[i], outputs[i]) for i, p in enumerate(params)]
    processor.update_state(BatchUpdate(len(params), [], added, []))
    return processor


def test_history_edits_equal_fastsample_on_the_rows_that_ask():
    dry = dict(dry_multiplier=0.8, dry_allowed_length=1, dry_sequence_breakers=[5])
    params = [SamplingParams(extra_args=dry), SamplingParams(),
              SamplingParams(extra_args={"no_repeat_ngram_size": 2})]
    prompts = [[1, 2, 3], [1, 2, 3], [4, 6]]
    outputs = [[1, 2], [9], [4]]
    processor = _history_edits(params, prompts, outputs)
    assert not processor.is_argmax_invariant()
    logits = _logits(3, seed=6)
    edited = processor.apply(logits.clone())
    assert torch.equal(edited[1], logits[1])
    expected_dry = fastsample.process_logits(
        logits[:1], dry_multiplier=0.8, dry_allowed_length=1, dry_sequence_breakers=[[5]],
        prompt_token_ids=[prompts[0]], output_token_ids=[outputs[0]])
    assert torch.equal(edited[0], expected_dry[0]) and not torch.equal(edited[0], logits[0])
    assert edited[2, 6] == float("-inf")  # 4 6 in the history, 4 last: 6 would repeat it
    # The output list is vLLM's live one: a token appended is seen at the next step.
    outputs[1].append(3)
    outputs[2].append(6)
    outputs[2].append(4)
    assert processor.apply(logits.clone())[2, 6] == float("-inf")


def test_history_edits_follow_removed_and_moved_rows():
    params = [SamplingParams(extra_args={"no_repeat_ngram_size": 1}), SamplingParams()]
    processor = _history_edits(params, [[3], [3]], [[], []])
    processor.update_state(BatchUpdate(2, [], [], [(0, 1, _swap())]))
    logits = processor.apply(_logits(2, seed=7))
    assert logits[1, 3] == float("-inf") and logits[0, 3] != float("-inf")
    processor.update_state(BatchUpdate(1, [1], [], []))
    assert processor.rows == {}


def _swap():
    from vllm.v1.sample.logits_processor import MoveDirectionality
    return MoveDirectionality.SWAP


def test_history_edits_are_validated_when_the_request_arrives():
    with pytest.raises(ValueError, match="dry_multiplier"):
        vllm_history.HistoryEdits.validate_params(
            SamplingParams(extra_args={"dry_multiplier": -1.0}))
    with pytest.raises(TypeError, match="no_repeat_ngram_size"):
        vllm_history.HistoryEdits.validate_params(
            SamplingParams(extra_args={"no_repeat_ngram_size": "3"}))
    vllm_history.HistoryEdits.validate_params(SamplingParams(extra_args={"other": 1}))


def test_a_step_on_the_device_waits_for_nothing(device):
    """On a GPU, torch's sync debug mode turns any host sync in the step into an error."""
    params = [SamplingParams(temperature=0.7, top_k=20, top_p=0.9, seed=11),
              SamplingParams(temperature=0.0), SamplingParams(temperature=1.3, min_p=0.05)]
    md = _metadata(params, {0: torch.Generator(device).manual_seed(11)})
    for name in ("temperature", "top_p", "top_k"):
        setattr(md, name, getattr(md, name).to(device))
    logits = _logits(3, seed=11).to(device)
    sampler = plugin.FastsampleSampler()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        tokens, _ = sampler.sample(logits.clone(), md)
    finally:
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("default")
    assert tokens.device == logits.device and tokens[1] == logits[1].argmax()
