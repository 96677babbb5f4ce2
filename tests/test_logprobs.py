"""Stage 7: the sampled token's logprob and the top-n, raw and processed, and prompt_logprobs.
Tolerance: 1e-5 absolute (the kernels normalize with the draw's 2^-38 fixed-point mass sum and
their own exp; torch computes log_softmax in float64 here)."""
import math

import pytest
import torch

import fastsample
from helpers import random_logits

TOL = 1e-5


def _close(a, b):
    a, b = a.cpu().double(), b.cpu().double()
    both_inf = torch.isinf(a) & torch.isinf(b) & (a == b)
    return bool((((a - b).abs() <= TOL) | both_inf).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n", [0, 1, 5, 20])
def test_raw_logprobs_equal_log_softmax(dtype, n, device):
    logits = random_logits(5, 32000, dtype, seed=41, special=True, device=device)
    # special=True puts +inf in row 1: every other logprob there is -3.4e38 in float64 and the
    # reference's order among them is rounding; keep NaN and -inf rows, not that one.
    logits[1, 3] = 0.0
    out = fastsample.sample(logits, temperature=0.8, top_p=0.9, seed=list(range(5)), logprobs=n)
    lsm = torch.log_softmax(fastsample.reference.sanitize(logits).double(), dim=1).cpu()
    tokens = out.tokens.cpu()
    assert _close(out.logprobs, lsm.gather(1, tokens[:, None])[:, 0])
    assert out.top_ids.shape == (5, n) and out.top_logprobs.shape == (5, n)
    values, ids = lsm.sort(dim=1, descending=True, stable=True)
    assert torch.equal(out.top_ids.cpu(), ids[:, :n])
    assert _close(out.top_logprobs, values[:, :n])
    want = fastsample.reference.sample(logits, temperature=0.8, top_p=0.9, seed=list(range(5)),
                                       logprobs=n)
    assert torch.equal(out.top_ids.cpu(), want.top_ids.cpu())


@pytest.mark.parametrize("params", [dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
                                    dict(temperature=1.3, top_p=0.5), dict(temperature=0.5),
                                    dict(temperature=0.0)],
                         ids=["hf-default", "top-p", "plain", "greedy"])
def test_processed_logprobs_over_the_keep_set(params, device):
    logits = random_logits(4, 20000, seed=42, device=device)
    kw = dict(params, seed=[5, 6, 7, 8], logprobs=8, logprobs_mode="processed")
    out = fastsample.sample(logits, **kw)
    want = fastsample.reference.sample(logits, **kw)
    assert torch.equal(out.tokens.cpu(), want.tokens.cpu())
    assert _close(out.logprobs, want.logprobs)
    assert torch.equal(out.top_ids.cpu(), want.top_ids.cpu())
    assert _close(out.top_logprobs, want.top_logprobs)
    if params["temperature"] == 0.0:
        assert out.logprobs.tolist() == [0.0] * 4
        assert bool((out.top_ids[:, 1:] == -1).all())
    # Consistent with process_logits: the sampled token's logprob is its log_softmax there.
    if params["temperature"] > 0:
        kept = fastsample.process_logits(logits, **params).double().cpu()
        lsm = torch.log_softmax(kept, dim=1).gather(1, out.tokens.cpu()[:, None])[:, 0]
        assert _close(out.logprobs, lsm)


def test_logprobs_with_edits_and_invalid_rows():
    logits = random_logits(3, 500, seed=43)
    banned = [list(range(500)), [1, 2], []]
    kw = dict(temperature=0.9, seed=1, logprobs=3, banned_token_ids=banned, repetition_penalty=1.4,
              prompt_token_ids=[[3, 4], [5], [6, 6]])
    for mode in ("raw", "processed"):
        out = fastsample.sample(logits, logprobs_mode=mode, **kw)
        want = fastsample.reference.sample(logits, logprobs_mode=mode, **kw)
        assert out.valid.tolist() == [False, True, True]
        assert out.logprobs[0] == -math.inf and out.top_ids[0].tolist() == [-1, -1, -1]
        assert torch.equal(out.tokens, want.tokens)
        assert _close(out.logprobs, want.logprobs)
        assert torch.equal(out.top_ids, want.top_ids) and _close(out.top_logprobs, want.top_logprobs)


@pytest.mark.parametrize("vocab", [3000, 50000])
def test_raw_logprobs_from_the_top_p_mass(vocab, device):
    # T = 1, top-p and no top-k: the kernels take the raw normalizer from the mass top-p sums
    # over the (edited) row instead of a pass of their own. Rows: unedited; a penalty on the
    # argmax (the edited maximum falls); a bias lifting a token above the maximum (the kernels
    # sum the raw row instead); the argmax banned; an allow-list (a dense mask: summed too).
    logits = random_logits(5, vocab, seed=45, device=device)
    top = logits.argmax(dim=1).tolist()
    kw = dict(temperature=1.0, top_p=0.9, seed=[1, 2, 3, 4, 5], logprobs=4,
              repetition_penalty=[1.0, 3.0, 1.0, 1.0, 1.0],
              prompt_token_ids=[[], [top[1], 7, 7], [], [], []],
              logit_bias=[{}, {}, {5: 100.0}, {}, {}],
              banned_token_ids=[[], [], [], [top[3], 9], []],
              allowed_token_ids=[None, None, None, None, list(range(0, vocab, 3))])
    out = fastsample.sample(logits, **kw)
    want = fastsample.reference.sample(logits, **kw)
    assert torch.equal(out.tokens.cpu(), want.tokens.cpu())
    lsm = torch.log_softmax(fastsample.reference.sanitize(logits).double(), dim=1).cpu()
    assert _close(out.logprobs, lsm.gather(1, out.tokens.cpu()[:, None])[:, 0])
    values, ids = lsm.sort(dim=1, descending=True, stable=True)
    assert torch.equal(out.top_ids.cpu(), ids[:, :4])
    assert _close(out.top_logprobs, values[:, :4])


@pytest.mark.parametrize("batch,vocab", [(1, 50000), (4, 3000)])
def test_raw_logprobs_after_overlapping_edits(batch, vocab, threads):
    # T = 1 and top-p: the raw normalizer is corrected over the edited tokens. Every way a token
    # can be listed more than once: in the prompt and the output, repeated in the output
    # (frequency counts), biased and penalized, banned and penalized, banned and suppressed, plus
    # padding. One row of 50000 runs on a team of two threads when two are set.
    logits = random_logits(batch, vocab, seed=47)
    g = torch.Generator().manual_seed(48)
    output = torch.randint(0, vocab, (batch, 64), generator=g)
    output[:, 32:40] = output[:, :8]  # repeats
    prompt = torch.cat([torch.randint(0, vocab, (batch, 96), generator=g), output[:, :16]], 1)
    prompt[:, -4:] = -1  # padding
    bias = [{int(output[r, 1]): 3.0, int(prompt[r, 2]): -2.0, 11: 1.5} for r in range(batch)]
    banned = [[int(output[r, 3]), int(prompt[r, 5]), 13] for r in range(batch)]
    kw = dict(temperature=1.0, top_p=0.95, seed=list(range(batch)), logprobs=5,
              repetition_penalty=1.3, frequency_penalty=0.4, presence_penalty=0.2,
              prompt_token_ids=prompt, output_token_ids=output, logit_bias=bias,
              banned_token_ids=banned, min_tokens=5, eos_token_id=13, stop_token_ids=[17],
              num_generated=2)
    out = fastsample.sample(logits, **kw)
    want = fastsample.reference.sample(logits, **kw)
    assert torch.equal(out.tokens, want.tokens)
    lsm = torch.log_softmax(fastsample.reference.sanitize(logits).double(), dim=1)
    assert _close(out.logprobs, lsm.gather(1, out.tokens[:, None])[:, 0])
    values, ids = lsm.sort(dim=1, descending=True, stable=True)
    assert torch.equal(out.top_ids, ids[:, :5])
    assert _close(out.top_logprobs, values[:, :5])


def test_top_n_padding_and_ties():
    x = torch.full((2, 100), -math.inf)
    x[0, [3, 50]] = 1.0          # two finite tokens: the rest of the top 5 is padding
    x[1] = 0.0                   # all tied: lowest ids first
    out = fastsample.sample(x, seed=0, logprobs=5)
    assert out.top_ids[0].tolist() == [3, 50, -1, -1, -1]
    assert out.top_logprobs[0, 2:].tolist() == [-math.inf] * 3
    assert out.top_ids[1].tolist() == [0, 1, 2, 3, 4]
    assert _close(out.top_logprobs[1], torch.full((5,), -math.log(100)))


def test_logprobs_validation():
    x = torch.zeros(1, 10)
    with pytest.raises(ValueError, match=r"logprobs=21 is out of range"):
        fastsample.sample(x, logprobs=21)
    with pytest.raises(ValueError, match=r"logprobs_mode='final'"):
        fastsample.sample(x, logprobs=1, logprobs_mode="final")


def test_prompt_logprobs(device):
    logits = random_logits(7, 5000, torch.bfloat16, seed=44, device=device)
    targets = torch.tensor([0, 10, 4999, 7, 7, 123, 2], device=device)
    out = fastsample.prompt_logprobs(logits, targets, n=4)
    lsm = torch.log_softmax(logits.double(), dim=1).cpu()
    assert _close(out.logprobs, lsm.gather(1, targets.cpu()[:, None])[:, 0])
    values, ids = lsm.sort(dim=1, descending=True, stable=True)
    assert torch.equal(out.top_ids.cpu(), ids[:, :4]) and _close(out.top_logprobs, values[:, :4])
    with pytest.raises(ValueError, match=r"target_ids\[0\]=5000 is out of range"):
        fastsample.prompt_logprobs(logits, torch.full((7,), 5000, device=device))
