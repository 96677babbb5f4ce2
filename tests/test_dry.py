"""DRY (llama.cpp's "don't repeat yourself" penalty): llama.cpp's own tiny exact cases, its
definition (ported below, Z-algorithm and all) on random histories, the reference bit for bit on
both edited-row paths (the patched path runs this file too: test_edited_row_paths.py; the CUDA
block code draws it in test_cuda_emulation.py), every path a request takes, and the errors."""
import dataclasses
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference
from fastsample.reference import contract
from fastsample.transformers import FastLogitsProcessor

from helpers import assert_kernels_equal_the_reference, random_logits


def llama_cpp_dry(logits, last_tokens, multiplier, base, allowed_length, penalty_last_n,
                  breakers):
    """llama.cpp's llama_sampler_dry_apply (src/llama-sampling.cpp), step for step on a list of
    float32 logits; last_tokens: the ids its accept() saw; penalty_last_n -1: all of them."""
    f32 = lambda v: float(torch.tensor(v, dtype=torch.float32))  # noqa: E731
    out = [f32(v) for v in logits]
    if multiplier == 0.0 or base < 1.0 or penalty_last_n == 0:
        return out
    ring = last_tokens if penalty_last_n < 0 else last_tokens[-penalty_last_n:]
    last_n_repeat = len(ring)
    if last_n_repeat <= allowed_length:
        return out
    rat = lambda i: ring[len(ring) - 1 - i]  # noqa: E731
    heads = {}
    for b in breakers:
        heads.setdefault(b[0], []).append(list(b[1:]))
    rep_limit = last_n_repeat
    for i in range(last_n_repeat):
        if rat(i) not in heads:
            continue
        longest = -1
        for tail in heads[rat(i)]:
            seq_len = len(tail)
            if seq_len > longest and seq_len <= i:
                if all(tail[k] == rat(i - k - 1) for k in range(seq_len)):
                    longest = seq_len
        if longest >= 0:
            rep_limit = i - longest
            break
    if rep_limit < allowed_length:
        return out
    count = [0] * last_n_repeat
    last = last_n_repeat - 1
    rt = lt = 0
    for k in range(1, last_n_repeat):
        if k > rt:
            n = 0
            while n + k < last_n_repeat and rat(n) == rat(n + k):
                n += 1
            count[last - k] = min(n, rep_limit)
            if n > 0:
                lt, rt = k, k + n - 1
        else:
            p = k - lt
            right_part_len = rt - k + 1
            if count[last - p] < right_part_len:
                count[last - k] = min(count[last - p], rep_limit)
            else:
                i = rt + 1
                while i < last_n_repeat and rat(i) == rat(i - k):
                    i += 1
                count[last - k] = min(i - k, rep_limit)
                lt, rt = k, i - 1
    max_repeat = {}
    for i in range(last_n_repeat - 1):
        if count[i] >= allowed_length:
            token = rat(last_n_repeat - 2 - i)
            if token not in max_repeat or max_repeat[token] < count[i]:
                max_repeat[token] = count[i]
    max_exponent = 0
    if f32(base) > f32(1.000001):
        max_exponent = int(f32(f32(88.7228391) / f32(math.log(f32(base)))))
    for token, length in max_repeat.items():
        if [] in heads.get(token, []):
            continue  # a one-token breaker
        e = length - allowed_length
        if max_exponent > 0 and e > max_exponent:
            e = max_exponent
        penalty = f32(f32(multiplier) * math.pow(f32(base), e))
        out[token] = f32(out[token] - penalty)
    return out


def probs_after(probs, history, **dry):
    x = torch.tensor(probs).log()[None]
    kw = dict(output_token_ids=[history], **dry)
    got = fastsample.process_logits(x, **kw)
    assert torch.equal(got, reference.process_logits(x, **kw))
    return torch.softmax(got, -1)[0].tolist()


@pytest.mark.parametrize("probs, history, expected, multiplier, base, allowed, last_n, breakers", [
    # llama.cpp's tests/test-sampling.cpp, test_dry: probabilities after DRY and a softmax.
    ([0.25] * 4, [0, 1], [0.25] * 4, 1.0, 1.1, 2, 4, None),
    ([0.25] * 4, [0, 1, 2, 0, 1], [0.296923, 0.296923, 0.109232, 0.296923], 1.0, 1.1, 2, 5, None),
    ([0.2] * 5, [0, 1, 3, 4, 0, 1], [0.2] * 5, 1.0, 1.1, 2, 6, [[3]]),
    ([0.2] * 5, [0, 1, 2, 0, 1], [0.241818, 0.241818, 0.032727, 0.241818, 0.241818],
     2.0, 1.1, 2, 5, None),
    ([0.2] * 5, [0, 1, 2, 3, 4, 0, 1], [0.2] * 5, 1.0, 1.1, 4, 7, None),
])
def test_llama_cpp_cases(probs, history, expected, multiplier, base, allowed, last_n, breakers):
    got = probs_after(probs, history, dry_multiplier=multiplier, dry_base=base,
                      dry_allowed_length=allowed, dry_penalty_last_n=last_n,
                      dry_sequence_breakers=breakers)
    assert got == pytest.approx(expected, abs=1e-6)


def test_hand_computed_lengths():
    """a b c c b c y a b c (llama.cpp's example): after "a b c" the history ends with "a b c"
    (3), "c" before "b c y" ends "b c" (2, extended by y) and "c" at 3 ends "c" (1, extended by
    b). With allowed_length 1, base 2: c loses 2^2, y 2^1, b 2^0."""
    a, b, c, y = 1, 2, 3, 4
    x = torch.zeros(1, 8)
    kw = dict(output_token_ids=[[a, b, c, c, b, c, y, a, b, c]], dry_multiplier=1.0,
              dry_base=2.0, dry_allowed_length=1)
    got = fastsample.process_logits(x, **kw)[0]
    assert got.tolist() == [0.0, 0.0, -1.0, -4.0, -2.0, 0.0, 0.0, 0.0]
    assert contract.dry_repeats(kw["output_token_ids"][0], 1, -1, []) == {c: 3, y: 2, b: 1}


def test_breakers_limit_the_repeat():
    """5 7 8 1 2 3 5 7 8 1 2: the end "5 7 8 1 2" repeats (5 ids) and 3 would extend it. A
    breaker in the end's repeat limits the length to the ids after the breaker."""
    h = [5, 7, 8, 1, 2, 3, 5, 7, 8, 1, 2]
    x = torch.zeros(1, 10)
    base = dict(output_token_ids=[h], dry_multiplier=1.0, dry_base=2.0, dry_allowed_length=1)
    assert fastsample.process_logits(x, **base)[0].tolist() == [0.0] * 3 + [-16.0] + [0.0] * 6
    limited = fastsample.process_logits(x, dry_sequence_breakers=[[7, 8]], **base)[0]
    assert limited[3] == -2.0  # two ids after "7 8": repeats are at most 2 long, 2^(2-1)
    cut = fastsample.process_logits(x, dry_sequence_breakers=[[8, 1], [7]], **base)[0]
    assert cut[3] == -1.0  # "8 1" starts latest (one id after it): 2^0
    single = fastsample.process_logits(x, dry_sequence_breakers=[[3]], **base)[0]
    assert single[3] == 0.0  # a one-token breaker is never penalized
    for br in ([[7, 8]], [[8, 1], [7]], [[3]]):
        kw = dict(base, dry_sequence_breakers=br)
        assert torch.equal(fastsample.process_logits(x, **kw), reference.process_logits(x, **kw))


def test_window_and_padding():
    """dry_penalty_last_n keeps the last n valid ids; padding anywhere is skipped."""
    x = torch.zeros(1, 10)
    prompt = torch.tensor([[5, 6, 7, -1, 5, -1]])
    output = torch.tensor([[-1, 6]])  # the history: 5 6 7 5 6
    kw = dict(prompt_token_ids=prompt, output_token_ids=output, dry_multiplier=1.0,
              dry_base=2.0, dry_allowed_length=2)
    assert fastsample.process_logits(x, **kw)[0, 7] == -1.0
    for n in (4, 3, 0):  # 6 7 5 6 keeps no "5 6" before the end; 0 turns DRY off
        assert fastsample.process_logits(x, dry_penalty_last_n=n, **kw)[0, 7] == 0.0
    assert fastsample.process_logits(x, dry_penalty_last_n=5, **kw)[0, 7] == -1.0


@pytest.mark.parametrize("seed", range(6))
def test_equals_llama_cpp_definition(seed):
    """Random histories over a 4-token alphabet (long repeats), random breakers and windows:
    the same logits as llama.cpp's function, up to its float32 exponent clamp and pow (1e-6)."""
    g = torch.Generator().manual_seed(seed)
    for case in range(20):
        V = 12
        L = int(torch.randint(1, 120, (1,), generator=g))
        history = torch.randint(0, 4, (L,), generator=g).tolist()
        logits = (torch.randn(V, generator=g) * 2).tolist()
        breakers = [torch.randint(0, 6, (int(torch.randint(1, 3, (1,), generator=g)),),
                                  generator=g).tolist() for _ in range(int(case % 3))]
        dry = dict(multiplier=float(torch.rand(1, generator=g)) * 2,
                   base=1.0 + float(torch.rand(1, generator=g)) * 2,
                   allowed_length=int(torch.randint(0, 4, (1,), generator=g)),
                   penalty_last_n=[-1, 0, 1, 7, 50][case % 5], breakers=breakers)
        want = llama_cpp_dry(logits, history, **dry)
        got = fastsample.process_logits(
            torch.tensor([logits]), output_token_ids=[history], dry_multiplier=dry["multiplier"],
            dry_base=dry["base"], dry_allowed_length=dry["allowed_length"],
            dry_penalty_last_n=dry["penalty_last_n"], dry_sequence_breakers=breakers or None)[0]
        assert got.tolist() == pytest.approx(want, rel=1e-6, abs=1e-6), (case, dry, history)


def test_long_repeats_stop_at_the_clamp():
    """300 repeats of one token with base 1.75: the exponent stops where 1.75^e would overflow
    float32 (158, as llama.cpp's 88.7228391 / ln 1.75), so the penalty is finite and equals
    llama.cpp's."""
    history = [3] * 300
    logits = [0.0] * 6
    want = llama_cpp_dry(logits, history, 1e-30, 1.75, 2, -1, [])
    got = fastsample.process_logits(torch.zeros(1, 6), output_token_ids=[history],
                                    dry_multiplier=1e-30, dry_base=1.75)[0]
    assert math.isfinite(got[3]) and got[3] < -1e8
    assert got.tolist() == pytest.approx(want, rel=1e-6)
    assert contract.dry_penalty(1.0, 1.75, 2, 2 + 158) == contract.dry_penalty(1.0, 1.75, 2, 2 + 500)
    assert contract.dry_penalty(1.0, 1.75, 2, 2 + 157) < contract.dry_penalty(1.0, 1.75, 2, 2 + 158)


COMBOS = [
    dict(dry_multiplier=0.8),
    dict(dry_multiplier=[0.8, 0.0, 2.0, 1.0, 0.5], dry_base=[1.75, 1.0, 2.0, 1.1, 3.0],
         dry_allowed_length=[2, 0, 1, 3, 2], dry_penalty_last_n=[-1, 5, 40, 0, 200],
         temperature=0.7, top_k=5),
    dict(dry_multiplier=1.0, dry_sequence_breakers=[[3], [4, 5]], repetition_penalty=1.3,
         frequency_penalty=0.4, presence_penalty=0.2, top_p=0.8),
    dict(dry_multiplier=torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0]),
         dry_sequence_breakers=[[[1]], None, [], [[2, 3], [7]], [[0, 0]]],
         no_repeat_ngram_size=3, logit_bias={3: 2.0}, banned_token_ids=[4], min_p=0.1),
]


@pytest.mark.parametrize("combo", COMBOS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_kernels_equal_the_reference(combo, dtype):
    """Long histories of few tokens (long repeats) with padding, penalties, n-gram bans, bias
    and masks beside DRY, both logprob modes."""
    g = torch.Generator().manual_seed(4)
    x = random_logits(5, 700, dtype=dtype, special=True)
    prompt = torch.randint(0, 12, (5, 300), generator=g)
    prompt[1, 100:200] = -1
    prompt[3, :150] = prompt[3, 150:]  # one long repeat
    output = torch.randint(0, 12, (5, 50), generator=g)
    output[2, 30:] = -1
    assert_kernels_equal_the_reference(x, dict(combo, prompt_token_ids=prompt,
                                               output_token_ids=output))


def test_paths_of_a_request():
    """SamplingParams through the Sampler and the batch, and FastLogitsProcessor: the same
    scores as process_logits over the same history."""
    V = 16
    history = [1, 2, 3, 1, 2, 3, 1, 2]
    params = SamplingParams(temperature=0.0, dry_multiplier=1.0, dry_base=2.0,
                            dry_allowed_length=1, dry_sequence_breakers=[[9]])
    x = torch.zeros(1, V)
    x[0, 3] = 3.5  # 3 would extend "1 2 3 1 2" (5 ids: 2^4 = 16): loses to token 0
    want = fastsample.process_logits(x, prompt_token_ids=[history], dry_multiplier=1.0,
                                     dry_base=2.0, dry_allowed_length=1,
                                     dry_sequence_breakers=[[9]])
    assert want[0, 3] == 3.5 - 16.0
    sampler = fastsample.Sampler(V)
    sampler.add("r", params, history)
    assert sampler.step(x)[0].token == 0
    sampled = dataclasses.replace(params, temperature=1.0)  # process_logits keeps every z
    batch = fastsample.SamplingBatch([sampled], prompt_token_ids=[history])
    assert torch.equal(fastsample.process_logits(x, batch=batch), want)
    proc = FastLogitsProcessor(dry_multiplier=1.0, dry_base=2.0, dry_allowed_length=1,
                               dry_sequence_breakers=[[9]])
    assert torch.equal(proc(torch.tensor([history]), x), want)


def test_adapters_read_it():
    p = fastsample.from_openai({"dry_multiplier": 0.8, "dry_base": 1.5, "dry_allowed_length": 3,
                                "dry_penalty_last_n": 64, "dry_sequence_breakers": [[13], [2, 3]]})
    assert (p.dry_multiplier, p.dry_base, p.dry_allowed_length, p.dry_penalty_last_n,
            p.dry_sequence_breakers) == (0.8, 1.5, 3, 64, ((13,), (2, 3)))
    with pytest.raises(TypeError, match="tokenize"):
        fastsample.from_openai({"dry_multiplier": 0.8, "dry_sequence_breakers": ["\n", ":"]})


@pytest.mark.parametrize("name, value, error", [
    ("dry_multiplier", -0.5, ValueError), ("dry_multiplier", math.inf, ValueError),
    ("dry_base", 0.9, ValueError), ("dry_base", math.nan, ValueError),
    ("dry_allowed_length", -1, ValueError), ("dry_allowed_length", 1.5, TypeError),
    ("dry_penalty_last_n", -2, ValueError), ("dry_penalty_last_n", "4", TypeError),
    ("dry_sequence_breakers", [3], TypeError), ("dry_sequence_breakers", [[]], ValueError),
    ("dry_sequence_breakers", [[10]], ValueError), ("dry_sequence_breakers", "\n", TypeError),
])
def test_bad_values_are_rejected(name, value, error):
    x = torch.zeros(2, 10)
    kw = {"dry_multiplier": 1.0, name: value, "output_token_ids": [[1], [2]]}
    with pytest.raises(error, match=name):
        fastsample.process_logits(x, **kw)
    with pytest.raises(error, match=name):
        fastsample.sample(x, **kw)
    if name != "dry_sequence_breakers" or value != [[10]]:  # V is unknown there
        with pytest.raises(error, match=name):
            SamplingParams(**{k: v for k, v in kw.items() if k != "output_token_ids"})


def test_unordered_output_is_rejected():
    with pytest.raises(ValueError, match="dry_multiplier reads the output in order"):
        fastsample.sample(torch.zeros(1, 10), dry_multiplier=1.0, output_token_ids=[[1, 2]],
                          output_token_counts=[[1, 3]])
