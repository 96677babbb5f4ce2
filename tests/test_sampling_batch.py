"""SamplingBatch at the centre: sample(logits, batch=...), rows added, removed and reordered on
the device, histories advanced per step, and the keyword form it stands for."""
import pytest
import torch

import fastsample
from fastsample import SamplingBatch, SamplingParams
from fastsample.kernel import launch

V = 300


def _params():
    return [
        SamplingParams(temperature=0.8, top_k=50, seed=11, repetition_penalty=1.4,
                       presence_penalty=0.3, logprobs=3),
        SamplingParams(temperature=0.0, logit_bias={7: 5.0}, banned_token_ids=(1, 2)),
        SamplingParams(top_p=0.9, seed=5, allowed_token_ids=tuple(range(0, V, 3)),
                       frequency_penalty=0.5, min_tokens=2, stop_token_ids=(9,),
                       eos_token_ids=(0,)),
        SamplingParams(min_p=0.05, top_n_sigma=1.5, seed=8),
    ]


def _logits(step, rows=4):
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(100 + step))


def _keyword_call(batch, logits, outputs):
    """The same call as sample(logits, batch=batch), spelled with sample()'s keywords."""
    ps = batch.params
    return fastsample.sample(
        logits, temperature=[p.temperature for p in ps], top_k=[p.top_k for p in ps],
        top_p=[p.top_p for p in ps], min_p=[p.min_p for p in ps],
        top_n_sigma=[p.top_n_sigma for p in ps], seed=[p.seed for p in ps],
        offset=[len(o) for o in outputs],
        repetition_penalty=[p.repetition_penalty for p in ps],
        presence_penalty=[p.presence_penalty for p in ps],
        frequency_penalty=[p.frequency_penalty for p in ps],
        prompt_token_ids=[[3, 4, 5]] * len(ps), output_token_ids=outputs,
        logit_bias=[dict(p.logit_bias or {}) for p in ps],
        allowed_token_ids=[list(p.allowed_token_ids) if p.allowed_token_ids else None
                           for p in ps],
        banned_token_ids=[list(p.banned_token_ids or ()) for p in ps],
        min_tokens=[p.min_tokens for p in ps],
        stop_token_ids=[list(p.eos_token_ids or ()) + list(p.stop_token_ids) for p in ps],
        logprobs=3)


def test_batch_call_equals_the_keyword_call_step_by_step():
    batch = SamplingBatch(_params(), prompt_token_ids=[[3, 4, 5]] * 4)
    assert batch.tracks_history and batch.logprobs == 3
    outputs = [[] for _ in range(4)]
    for step in range(6):
        x = _logits(step)
        got = fastsample.sample(x, batch=batch)
        want = _keyword_call(batch, x, outputs)
        assert torch.equal(got.tokens, want.tokens), step
        assert torch.equal(got.logprobs, want.logprobs) and torch.equal(got.top_ids, want.top_ids)
        # The call leaves the batch as it was: the same call again draws the same tokens.
        assert torch.equal(fastsample.sample(x, batch=batch).tokens, got.tokens)
        batch.advance(got.tokens)
        for o, t in zip(outputs, got.tokens.tolist()):
            o.append(t)
        assert batch.offset.tolist() == [step + 1] * 4
        assert batch.num_generated.tolist() == [step + 1] * 4
    # Row 2 masked EOS and its stop id for its first two tokens (min_tokens=2).
    assert 0 not in outputs[2][:2] and 9 not in outputs[2][:2]
    assert all(t % 3 == 0 for t in outputs[2])


def test_process_logits_with_a_batch_equals_the_keyword_call():
    batch = SamplingBatch(_params(), prompt_token_ids=[[3, 4, 5]] * 4)
    x = _logits(0)
    got = fastsample.process_logits(x, batch=batch)
    assert torch.equal(got, fastsample.process_logits(x, **batch.kwargs(draw=False)))
    assert torch.equal(got[1].isfinite().nonzero().flatten(), torch.tensor([7]))  # greedy, bias


def test_rows_follow_their_requests_through_remove_reorder_and_append():
    alone = []
    for p in _params():
        b = SamplingBatch([p], prompt_token_ids=[[3, 4, 5]])
        tokens = []
        for step in range(5):
            t = fastsample.sample(_logits(step, 4)[len(alone):len(alone) + 1], batch=b)
            t = t.tokens if isinstance(t, fastsample.SampleOutput) else t
            b.advance(t)
            tokens.append(int(t[0]))
        alone.append(tokens)
    batch = SamplingBatch(_params()[:3], prompt_token_ids=[[3, 4, 5]] * 3)
    order = [0, 1, 2]  # which request each row holds
    got = {r: [] for r in range(4)}
    for step in range(5):
        if step == 2:
            batch.remove([1])
            order = [0, 2]
            batch.append([_params()[3]], prompt_token_ids=[[3, 4, 5]],
                         output_token_ids=[alone[3][:2]])
            order.append(3)
            batch.keep([2, 0, 1])
            order = [order[i] for i in (2, 0, 1)]
        x = _logits(step)[order]
        out = fastsample.sample(x, batch=batch)
        batch.advance(out.tokens)
        for row, request in enumerate(order):
            got[request].append(int(out.tokens[row]))
    assert got[0] == alone[0] and got[2] == alone[2]
    assert got[1] == alone[1][:2] and got[3] == alone[3][2:]
    assert [p.seed for p in batch.params] == [8, 11, 5]


def test_history_starts_when_a_row_first_reads_it():
    plain = SamplingBatch([SamplingParams(seed=1), SamplingParams(seed=2)])
    assert not plain.tracks_history
    plain.advance()  # no row reads its history: the tokens are not needed
    penalized = SamplingParams(seed=3, repetition_penalty=2.0)
    with pytest.raises(ValueError, match=r"rows \[0, 1\] generated tokens.*start_history"):
        plain.append([penalized])
    assert len(plain) == 2  # nothing changed
    plain.start_history([[10], [20]])
    plain.append([penalized], output_token_ids=[[30, 31]])
    assert plain.tracks_history and plain.num_generated.tolist() == [1, 1, 2]
    assert plain.offset.tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match=r"advance\(tokens\).*int64 tensor \[3\]"):
        plain.advance()
    plain.advance(torch.tensor([5, 6, 7]))
    hist = plain.kwargs()["output_token_ids"]
    assert hist[:, :3].tolist() == [[10, 5, -1], [20, 6, -1], [30, 31, 7]]


def test_the_history_grows_past_its_first_capacity():
    batch = SamplingBatch([SamplingParams(seed=4, frequency_penalty=1.0)])
    tokens = []
    for step in range(40):
        t = fastsample.sample(_logits(step, 1), batch=batch)
        batch.advance(t)
        tokens.append(int(t[0]))
    assert batch.kwargs()["output_token_ids"][0, :40].tolist() == tokens
    want = fastsample.sample(_logits(40, 1), seed=4, offset=40, frequency_penalty=1.0,
                             output_token_ids=[tokens])
    assert torch.equal(fastsample.sample(_logits(40, 1), batch=batch), want)


def test_bad_batch_calls_name_what_is_wrong():
    batch = SamplingBatch([SamplingParams(banned_token_ids=(250,))])
    with pytest.raises(TypeError, match="got also top_k, seed"):
        fastsample.sample(torch.randn(1, V), batch=batch, top_k=3, seed=1)
    with pytest.raises(TypeError, match="got also repetition_penalty"):
        fastsample.process_logits(torch.randn(1, V), batch=batch, repetition_penalty=1.2)
    with pytest.raises(ValueError, match=r"shape \[1, V\]"):
        fastsample.sample(torch.randn(2, V), batch=batch)
    with pytest.raises(ValueError, match="token id 250.*V=200"):
        fastsample.sample(torch.randn(1, 200), batch=batch)
    with pytest.raises(TypeError, match="SamplingBatch"):
        fastsample.sample(torch.randn(1, V), batch={"temperature": 1.0})
    with pytest.raises(ValueError, match=r"rows\[1\]=1 is not a row"):
        batch.keep([0, 1])
    with pytest.raises(ValueError, match="name a row twice"):
        SamplingBatch([SamplingParams()] * 2).keep([0, 0])
    with pytest.raises(ValueError, match="share logprobs_mode"):
        SamplingBatch([SamplingParams(logprobs=1),
                       SamplingParams(logprobs=1, logprobs_mode="processed")])
    with pytest.raises(ValueError, match=r"prompt_token_ids\[0\]\[1\]=-3"):
        SamplingBatch([SamplingParams()], prompt_token_ids=[[1, -3]])
    # A keyword at its default value beside the batch changes nothing and is accepted.
    assert fastsample.sample(torch.randn(1, V), batch=batch, temperature=1.0).shape == (1,)


def test_devices_without_kernels_run_the_batch_on_the_reference(monkeypatch):
    batch = SamplingBatch(_params(), prompt_token_ids=[[3, 4, 5]] * 4)
    x = _logits(0)
    compiled = fastsample.sample(x, batch=batch)
    processed = fastsample.process_logits(x, batch=batch)
    monkeypatch.setattr(launch, "runs_compiled", lambda logits: False)
    by_reference = fastsample.sample(x, batch=batch)
    assert torch.equal(by_reference.tokens, compiled.tokens)
    assert torch.allclose(by_reference.logprobs, compiled.logprobs, atol=1e-5)
    assert torch.equal(fastsample.process_logits(x, batch=batch), processed)


def test_fields_no_batch_call_runs_are_rejected():
    with pytest.raises(ValueError, match=r"params\[1\]\.prompt_logprobs=.*does not run it"):
        SamplingBatch([SamplingParams(), SamplingParams(prompt_logprobs=1)])
    # A grammar row needs the tokenizer and V (tests/test_structured_outputs.py runs them).
    with pytest.raises(ValueError, match=r"params\[1\]\.structured_output needs the model's "
                                         r"tokenizer and V"):
        SamplingBatch([SamplingParams(),
                       SamplingParams(structured_output={"guided_choice": ["a", "b"]})])


def test_seeds_are_drawn_only_for_unseeded_rows():
    from fastsample.requests import arguments
    ref = torch.Generator().manual_seed(0)
    draws = [int(arguments.draw_seeds(torch.empty(1, dtype=torch.int64), ref)[0])
             for _ in range(2)]
    # Requests joining one at a time take the generator's draws in turn, one each.
    s = fastsample.Sampler(50, generator=torch.Generator().manual_seed(0))
    s.add("a", SamplingParams())
    s.step(torch.randn(1, 50))
    s.add("b", SamplingParams())
    s.step(torch.randn(2, 50))
    assert [p.seed for p in s._batch.params] == draws
    # Seeded rows leave torch's global generator alone.
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    b = SamplingBatch([SamplingParams(seed=1), SamplingParams(seed=2)])
    b.append([SamplingParams(seed=3)])
    assert torch.equal(torch.rand(1), expected)


def test_devices_compare_as_tensors_report_them():
    b = SamplingBatch([SamplingParams(seed=1)], device="cpu:0")
    assert b.device == torch.device("cpu")
    assert fastsample.sample(torch.randn(1, 20), batch=b).shape == (1,)
    s = fastsample.Sampler(20, device="cpu:0")
    s.add("a", SamplingParams(seed=1))
    assert len(s.step(torch.randn(1, 20))) == 1


def test_every_listed_id_is_checked_and_a_failed_append_changes_nothing():
    b = SamplingBatch([SamplingParams(seed=1)])
    b.append([SamplingParams(seed=2)], output_token_ids=[[100, 7]])
    with pytest.raises(ValueError, match="token id 100.*V=50"):
        fastsample.sample(torch.randn(2, 50), batch=b)
    with pytest.raises(ValueError, match=r"prompt_token_ids\[0\]\[0\]=18446744073709551616"):
        b.append([SamplingParams(seed=3, repetition_penalty=1.2)], prompt_token_ids=[[2**64]])
    assert len(b) == 2 and not b.tracks_history


def test_the_sampler_frees_histories_no_request_reads():
    s = fastsample.Sampler(50)
    s.add("p", SamplingParams(seed=1, repetition_penalty=1.5, max_tokens=2))
    s.add("q", SamplingParams(seed=2))
    x = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    s.step(x)
    s.step(x)  # "p" finishes (max_tokens)
    s.step(x[:1])
    assert not s._batch.tracks_history
    s.add("r", SamplingParams(seed=3, frequency_penalty=1.0))
    out = s.step(torch.randn(2, 50, generator=torch.Generator().manual_seed(1)))
    assert s._batch.tracks_history
    # "q"'s three tokens are back in its device history.
    assert s._batch.kwargs()["output_token_ids"][0, :4].tolist()[:4] == \
        s._requests[0].output[:4]
    assert len(out) == 2
