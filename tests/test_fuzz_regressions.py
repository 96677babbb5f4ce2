"""Wrong results, hangs and out-of-bounds reads that fuzzing and the peers' own test suites found
(docs/reliability.md), each pinned by the smallest input that showed it."""
import math
import subprocess
import sys
import textwrap
import threading

import pytest
import torch

import fastsample
from fastsample import reference

FLT_MAX = torch.finfo(torch.float32).max


# -- Stage 4: z = x / T overflowing to -inf ------------------------------------------------

@pytest.mark.parametrize("value, temperature", [("lowest", 0.5), (-10.0, 1e-38)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_row_whose_z_overflows_to_minus_inf_stays_valid(value, temperature, dtype,
                                                               device):
    # Every z = x / T rounds to -inf: z is clamped to -FLT_MAX, so the row's finite logits tie
    # and are drawn uniformly, never reported as token 2**63-1 or left with no mass.
    value = torch.finfo(dtype).min if value == "lowest" else value
    x = torch.full((3, 8), value, dtype=dtype, device=device)
    x[2, :4] = -math.inf  # half of a row masked: those tokens stay out
    out = fastsample.sample(x, temperature=temperature, seed=[1, 2, 3], return_valid=True)
    assert out.valid.all()
    assert ((out.tokens >= 0) & (out.tokens < 8)).all()
    assert int(out.tokens[2]) >= 4
    want = reference.sample(x.cpu(), temperature=temperature, seed=[1, 2, 3])
    assert torch.equal(out.tokens.cpu(), want)
    # process_logits: the finite tokens keep -FLT_MAX (not -inf), as the reference says.
    got = fastsample.process_logits(x, temperature=temperature)
    ref = reference.process_logits(x.cpu(), temperature=temperature)
    assert torch.equal(got.cpu(), ref)
    assert got[0].eq(-FLT_MAX).all() and got[2, :4].eq(-math.inf).all()
    # Logprobs: uniform over the finite tokens, both modes (raw: log_softmax of x itself).
    for mode, expect in (("processed", -math.log(8)), ("raw", -math.log(8))):
        lp = fastsample.sample(x[:1], temperature=temperature, seed=1, logprobs=3,
                               logprobs_mode=mode)
        assert lp.valid.all() and abs(float(lp.logprobs[0]) - expect) < 1e-5
        assert lp.top_ids[0].tolist() == [0, 1, 2]


def test_small_temperature_row_between_overflows(device):
    # Some z overflow to -inf and others stay finite: only the largest survives top-k/top-p.
    x = torch.tensor([[-30.0, -20.0, -10.0, -1e-37]], device=device)
    for kw in (dict(top_k=2), dict(top_p=0.5), dict(min_p=0.5), {}):
        got = fastsample.process_logits(x, temperature=1e-37, **kw)
        assert torch.equal(got.cpu(), reference.process_logits(x.cpu(), temperature=1e-37, **kw))
        tok = fastsample.sample(x, temperature=1e-37, seed=0, **kw)
        assert int(tok[0]) == 3


def test_processed_logprobs_without_alternatives_on_the_candidate_list(device):
    # logprobs=0 with a small top-k: the top-n selection over the candidate list compared with
    # and wrote its (n-1)-th entry, keys[-1] on the stack (AddressSanitizer, found by
    # test_fuzz.py). The sanitizer suite runs this; here the values are checked.
    x = torch.randn(3, 5000, generator=torch.Generator().manual_seed(4)).to(device)
    out = fastsample.sample(x, top_k=5, seed=[1, 2, 3], logprobs=0, logprobs_mode="processed")
    assert out.top_ids.shape == (3, 0) and out.valid.all()
    want = reference.sample(x.cpu(), top_k=5, seed=[1, 2, 3], logprobs=0,
                            logprobs_mode="processed")
    assert torch.equal(out.tokens.cpu(), want.tokens)
    assert torch.allclose(out.logprobs.cpu(), want.logprobs, atol=1e-5)


# -- Stage 5: top_p as the user wrote it ----------------------------------------------------

def test_top_p_decimal_boundary_equals_transformers(device):
    # transformers' test_top_p_dist_warper: a nucleus whose mass is exactly top_p keeps the
    # smaller set; a float32 top_p (0.800000012) needed one token more, and its tie kept all.
    from transformers.generation.logits_process import TopPLogitsWarper

    dist = torch.log(torch.tensor([[0.3, 0.1, 0.1, 0.5], [0.15, 0.3, 0.3, 0.25]]))
    expected = torch.tensor([[0.3, 0.0, 0.0, 0.5], [0.0, 0.3, 0.3, 0.25]])
    hf = TopPLogitsWarper(0.8)(None, dist.clone()).exp()
    assert torch.allclose(hf, expected, atol=1e-6)
    got = fastsample.process_logits(dist.to(device), top_p=0.8).exp().cpu()
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(reference.process_logits(dist, top_p=0.8).exp(), expected, atol=1e-6)
    # The same per row, from a float64 tensor, a list and a SamplingBatch.
    per_row = fastsample.process_logits(dist.to(device), top_p=[0.8, 0.8]).exp().cpu()
    assert torch.allclose(per_row, expected, atol=1e-6)
    batch = fastsample.SamplingBatch([fastsample.SamplingParams(top_p=0.8)] * 2, device=device)
    assert batch.top_p.dtype == torch.float64
    got = fastsample.process_logits(dist.to(device), top_p=batch.top_p).exp().cpu()
    assert torch.allclose(got, expected, atol=1e-6)


# -- Stage 1: empty allow-lists ---------------------------------------------------------------

def test_empty_allowed_row_is_rejected_and_none_is_unrestricted(device):
    x = torch.randn(2, 10, device=device)
    for allowed in ([[], []], [[], [3]], []):
        with pytest.raises(ValueError, match=r"allowed_token_ids.*=\[\] would mask every token"):
            fastsample.sample(x, allowed_token_ids=allowed, seed=0)
    got = fastsample.process_logits(x, allowed_token_ids=[None, [3]])
    assert torch.isfinite(got[0]).all()
    assert torch.isfinite(got[1]).nonzero().flatten().tolist() == [3]
    with pytest.raises(ValueError, match="allowed_token_ids=\\[\\] would mask every token"):
        fastsample.SamplingParams(allowed_token_ids=[])


# -- Threads: set_num_threads during sample, a Sampler shared by threads --------------------

def test_set_num_threads_while_sampling_never_deadlocks():
    # A team of threads was planned from the pool's size before the pool was held: a resize in
    # between left the team waiting for a member that never came, forever. In a subprocess, so
    # a hang fails this test instead of the whole run.
    code = textwrap.dedent("""
        import threading, time, torch, fastsample
        x = torch.randn(1, 65536, generator=torch.Generator().manual_seed(0)) * 3
        want = int(fastsample.sample(x, top_p=0.9, seed=5))
        stop, bad = False, []
        def loop():
            while not stop:
                t = int(fastsample.sample(x, top_p=0.9, seed=5))
                if t != want:
                    bad.append(t)
        workers = [threading.Thread(target=loop) for _ in range(2)]
        for w in workers:
            w.start()
        end, n = time.time() + 3, 0
        while time.time() < end:
            fastsample.set_num_threads(1 + n % 3)
            n += 1
        stop = True
        for w in workers:
            w.join()
        assert not bad, bad[:5]
        print("resizes", n)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.split()[-1]) > 10


class _JoiningTokenizer:
    eos_token_id = None

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


def test_sampler_stepped_from_two_threads_equals_one_thread():
    # Steps are serialized: whichever thread runs a step, each request's k-th token is drawn
    # from its own stream and history, so every request's final text (the Sampler's own
    # transcript, decoded) equals a single-threaded run's.
    vocab = 5000
    logits = torch.randn(8, vocab, generator=torch.Generator().manual_seed(3)) * 2
    params = [fastsample.SamplingParams(temperature=0.9, top_p=0.95, seed=10 + i,
                                        repetition_penalty=1.3, max_tokens=6 + 3 * i)
              for i in range(8)]

    def run(threads):
        s = fastsample.Sampler(vocab, tokenizer=_JoiningTokenizer())
        for i, p in enumerate(params):
            s.add(i, p, [1, 2, 3])
        final, errors = {}, []

        def loop():
            while True:
                n = len(s)
                if n == 0:
                    return
                try:
                    outs = s.step(logits[:n])
                except ValueError as e:  # the batch changed between len() and step(): retry
                    if "logits must have shape" not in str(e):
                        errors.append(e)
                        return
                    continue
                for out in outs:
                    if out.finished:
                        final[out.request_id] = (out.finish_reason, out.text)

        workers = [threading.Thread(target=loop) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors
        return final

    want = run(1)
    assert [len(want[i][1].split()) for i in range(8)] == [6 + 3 * i for i in range(8)]
    assert run(3) == want


# -- A failed Sampler step changes nothing ----------------------------------------------------

class _FlakyTokenizer:
    eos_token_id = 0

    def __init__(self, fail_at):
        self.calls, self.fail_at = 0, fail_at

    def decode(self, ids, skip_special_tokens=True):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("tokenizer failed")
        return " ".join(map(str, ids))


def _sampler_run(steps, fail=None, tokenizer=None):
    """Three requests with penalties, bias and min_tokens; `fail`: the step whose logits hold
    a row with no valid token (that step raises and is then taken again with good logits)."""
    vocab = 300
    g = torch.Generator().manual_seed(7)
    s = fastsample.Sampler(vocab, eos_token_id=0, tokenizer=tokenizer)
    for i in range(3):
        s.add(f"r{i}", fastsample.SamplingParams(
            temperature=1.0, seed=i, repetition_penalty=1.5, frequency_penalty=0.5,
            logit_bias={5: 3.0}, min_tokens=4, max_tokens=12), [1, 2])
    out = {f"r{i}": [] for i in range(3)}
    errors = 0
    for step in range(steps):
        ids = s.request_ids
        if not ids:
            break
        logits = torch.randn(len(ids), vocab, generator=g)
        logits[:, 0] += 4.0  # EOS likely once min_tokens allows it
        if step == fail:
            bad = logits.clone()
            bad[0] = -math.inf
            with pytest.raises(ValueError, match="no valid token"):
                s.step(bad)
            errors += 1
        while True:
            try:
                results = s.step(logits)
                break
            except RuntimeError as e:
                assert "tokenizer failed" in str(e)
                errors += 1
        for r in results:
            out[r.request_id].append((r.token, r.finish_reason, r.text))
    return out, errors


def test_failed_step_changes_nothing():
    # A row with no valid token used to advance the device history and offsets but not the
    # host transcript: later steps read out of bounds, min_tokens counted the failed step.
    want, _ = _sampler_run(20)
    got, errors = _sampler_run(20, fail=3)
    assert errors == 1 and got == want
    assert all(len(v) >= 4 for v in want.values())


def test_tokenizer_error_inside_step_loses_no_token():
    want, _ = _sampler_run(20, tokenizer=_FlakyTokenizer(fail_at=-1))
    got, errors = _sampler_run(20, tokenizer=_FlakyTokenizer(fail_at=8))
    assert errors == 1 and got == want


def test_sampler_rejects_bad_ids_and_vocab():
    s = fastsample.Sampler(50)
    p = fastsample.SamplingParams()
    with pytest.raises(TypeError, match="request_id must be hashable"):
        s.add(["x"], p)
    for prompt in ([1.5], ["a"], [1, None]):
        with pytest.raises(TypeError, match=r"prompt_token_ids\[\d\]=.*must be ints"):
            s.add("a", p, prompt)
    with pytest.raises(ValueError, match=r"prompt_token_ids\[0\]=50 is out of range"):
        s.add("a", p, [50])
    with pytest.raises(TypeError, match="prompt_token_ids must be a 1-D integer tensor"):
        s.add("a", p, torch.tensor([1.0]))
    assert len(s) == 0  # nothing half-added
    s.add("a", p, torch.tensor([1, 2]))
    assert s.request_ids == ["a"] and s.step(torch.randn(1, 50)).tokens.shape == (1,)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        fastsample.Sampler(True)
    with pytest.raises(TypeError, match=r"eos_token_id\[0\]=.*must be ints"):
        fastsample.Sampler(10, eos_token_id=[1.0])
    with pytest.raises(ValueError, match=r"eos_token_id\[0\]=10 is out of range"):
        fastsample.Sampler(10, eos_token_id=10)


# -- Stage 1: a bitmask shared by every row -------------------------------------------------

def test_token_bitmask_with_row_stride_zero(device):
    x = torch.randn(3, 100, device=device)
    one = torch.zeros(1, 4, dtype=torch.int32)
    one[0, 1] = 0b1011  # tokens 32, 33, 35
    shared = one.to(device).expand(3, 4)
    assert shared.stride(0) == 0
    got = fastsample.process_logits(x, token_bitmask=shared)
    full = fastsample.process_logits(x, token_bitmask=one.repeat(3, 1).to(device))
    assert torch.equal(got, full)
    assert torch.equal(got.cpu(), reference.process_logits(x.cpu(), token_bitmask=one.expand(3, 4)))
    tokens = fastsample.sample(x, token_bitmask=shared, seed=0)
    assert set(tokens.tolist()) <= {32, 33, 35}


# -- Stage 3: overflow meets overflow -------------------------------------------------------

def test_reference_sanitizes_after_penalties_as_the_kernels_do(device):
    # -3e38 * 2 = -inf, then -inf - (-inf) = NaN in the reference: it must read -inf (stage 0).
    x = torch.tensor([[-3e38, 1.0]], device=device)
    kw = dict(repetition_penalty=2.0, frequency_penalty=-3.4e38, presence_penalty=-3.4e38,
              output_token_ids=[[0]])
    want = torch.tensor([[-math.inf, 1.0]])
    assert torch.equal(reference.process_logits(x.cpu(), **kw), want)
    assert torch.equal(fastsample.process_logits(x, **kw).cpu(), want)
    assert int(reference.sample(x.cpu(), seed=0, **kw)) == 1
    assert int(fastsample.sample(x, seed=0, **kw)) == 1


# -- Silent conversions -----------------------------------------------------------------------

X = torch.randn(2, 16)


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(frequency_penalty=1.0, output_token_ids=torch.tensor([[1], [2]]),
          output_token_counts=torch.tensor([[2**32 + 1], [1]])), ValueError,
     r"output_token_counts\[0\]\[0\]=4294967297 is out of range"),
    (dict(frequency_penalty=1.0, output_token_ids=[[1], [2]], output_token_counts=[[1.5], [1]]),
     TypeError, r"output_token_counts\[0\]\[0\]=1.5"),
    (dict(frequency_penalty=1.0, output_token_ids=torch.tensor([[1], [2]]),
          output_token_counts=torch.tensor([[1.0], [1.0]])), TypeError,
     r"output_token_counts: counts must be an integer tensor"),
    (dict(repetition_penalty=1.0, output_token_ids=[[1.0], [2]]), TypeError,
     r"output_token_ids\[0\] must be a list of int"),
    (dict(repetition_penalty=1e-50, output_token_ids=[[1], [2]]), ValueError,
     r"repetition_penalty=1e-50 is out of range \(it rounds to 0 in float32\)"),
    (dict(temperature=1e-50), ValueError, r"temperature=1e-50 is out of range \(it rounds to 0"),
    (dict(min_p=[1e-50, 0.1]), ValueError, r"min_p\[0\]=1e-50 is out of range"),
    # Validated although their stage is off (repetition 1, min_tokens 0):
    (dict(prompt_token_ids=[[99], [1]]), ValueError, r"prompt_token_ids\[0\]\[0\]=99"),
    (dict(output_token_ids=[[1], [-5]]), ValueError, r"output_token_ids\[1\]\[0\]=-5"),
    (dict(eos_token_id=16), ValueError, r"eos_token_id=16 is out of range"),
    (dict(stop_token_ids=[3, 16]), ValueError, r"stop_token_ids\[0\]\[1\]=16 is out of range"),
    (dict(num_generated=[-1, 0]), ValueError, r"num_generated\[0\]=-1 is out of range"),
    (dict(ignore_eos="yes"), TypeError, r"ignore_eos must be a bool"),
])
@pytest.mark.parametrize("fn", [fastsample.sample, fastsample.process_logits,
                                fastsample.reference.process_logits])
def test_silent_conversions_are_errors(fn, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(X, **kwargs)


def test_tiny_values_that_survive_float32_are_exact():
    # 1e-40 is a float32 subnormal: accepted, and kernel and reference agree on it.
    x = torch.randn(2, 300, generator=torch.Generator().manual_seed(1)) * 30
    for kw in (dict(min_p=1e-40), dict(temperature=1e-40), dict(repetition_penalty=1e-40,
                                                                 output_token_ids=[[1], [2]])):
        assert torch.equal(fastsample.process_logits(x, **kw), reference.process_logits(x, **kw))
