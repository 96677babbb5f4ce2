"""Stages 1-3 (hard masks, logit_bias, penalties) in the fused kernels against the reference,
transformers and hand-computed values."""
import math

import pytest
import torch

import fastsample
from fastsample import _C, reference
from fastsample.requests import edit_arguments
from helpers import assert_keep_sets_match, random_logits

NEG_INF = -math.inf


def _history(batch, length, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    # Few distinct ids (repeats), then -1 padding of varying length.
    ids = torch.randint(0, min(vocab, 300), (batch, length), generator=g)
    for r in range(batch):
        ids[r, length - r * (length // (2 * batch) + 1):] = -1
    return ids


EDITS = {
    "penalties": lambda b, v: dict(
        repetition_penalty=[1.3, 1.0, 0.8, 1.1][:b] + [1.2] * max(0, b - 4),
        frequency_penalty=0.4, presence_penalty=[0.0, 0.6, -0.5, 1.0][:b] + [0.3] * max(0, b - 4),
        prompt_token_ids=_history(b, 64, v, 1), output_token_ids=_history(b, 48, v, 2)),
    "bias-and-masks": lambda b, v: dict(
        logit_bias={0: 100.0, 5: -30.5, v - 1: 2.25}, banned_token_ids=[1, 2, 3],
        min_tokens=4, eos_token_id=7, stop_token_ids=[8], num_generated=[0, 4, 2, 9][:b] + [0] * max(0, b - 4)),
    "allowed": lambda b, v: dict(allowed_token_ids=[list(range(10, 10 + 40 * (r + 1))) for r in range(b)],
                                 banned_token_ids=[12], logit_bias={11: 3.0}),
    "everything": lambda b, v: dict(
        repetition_penalty=1.2, frequency_penalty=0.5, presence_penalty=0.5,
        prompt_token_ids=_history(b, 100, v, 3), output_token_ids=_history(b, 60, v, 4),
        logit_bias=[{r: 4.0, r + 1: -2.0} for r in range(b)], banned_token_ids=[[r] for r in range(b)],
        token_bitmask=torch.full((b, (v + 31) // 32), -1, dtype=torch.int32).index_fill_(1, torch.tensor([0]), 0x7fff0000)),
}
FILTERS = {
    "hf-default": dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05),
    "top-p": dict(temperature=1.0, top_p=0.95),
    "greedy": dict(temperature=0.0),
    "none": dict(temperature=1.0),
}


@pytest.mark.parametrize("edits", list(EDITS))
@pytest.mark.parametrize("filters", list(FILTERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_stages_match_reference(edits, filters, dtype, device):
    vocab = 5000
    logits = random_logits(4, vocab, dtype, seed=31, device=device)
    kw = {**EDITS[edits](4, vocab), **FILTERS[filters]}
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **kw), **kw)
    seeds = list(range(4))
    got = fastsample.sample(logits, seed=seeds, return_valid=True, **kw)
    want = fastsample.reference.sample(logits, seed=seeds, return_valid=True, **kw)
    assert torch.equal(got.valid.cpu(), want.valid.cpu())
    assert float((got.tokens.cpu() == want.tokens.cpu()).double().mean()) >= 0.75


@pytest.mark.parametrize("vocab", [1000, 128256])
def test_team_of_threads_and_large_vocab(vocab, threads):
    logits = random_logits(2, vocab, seed=32)
    kw = {**EDITS["everything"](2, vocab), **FILTERS["top-p"]}
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **kw), **kw)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_patches_spread_over_a_large_vocab(dtype, threads):
    # Thousands of edited tokens all over the row (most 64-token groups hold one), including
    # each row's argmax, as in a long history: the patched row's group maxima, chunks and raw
    # logprobs against the reference, with one thread and with a team of two on one row.
    vocab = 128256
    logits = random_logits(2, vocab, dtype, seed=37)
    g = torch.Generator().manual_seed(7)
    prompt = torch.randint(0, vocab, (2, 3000), generator=g)
    prompt[:, 0] = logits.float().argmax(dim=1)
    kw = dict(temperature=1.0, top_p=0.95, repetition_penalty=1.3, frequency_penalty=0.5,
              presence_penalty=0.5, prompt_token_ids=prompt,
              output_token_ids=torch.randint(0, vocab, (2, 1000), generator=g),
              logit_bias={int(t): 2.0 for t in torch.randint(0, vocab, (100,), generator=g)},
              banned_token_ids=[int(t) for t in torch.randint(0, vocab, (50,), generator=g)])
    assert_keep_sets_match(logits, fastsample.process_logits(logits, **kw), **kw)
    got = fastsample.sample(logits, seed=[3, 4], logprobs=5, **kw)
    want = fastsample.reference.sample(logits, seed=[3, 4], logprobs=5, **kw)
    assert torch.equal(got.tokens, want.tokens)
    assert torch.equal(got.top_ids, want.top_ids)
    assert bool(((got.logprobs - want.logprobs).abs() <= 1e-5).all())
    assert bool(((got.top_logprobs - want.top_logprobs).abs() <= 1e-5).all())
    # Greedy: the penalized argmax gives way to the edited row's maximum.
    greedy = dict(kw, temperature=0.0)
    assert torch.equal(fastsample.sample(logits, **greedy),
                       fastsample.reference.sample(logits, **greedy))


def test_repetition_penalty_equals_transformers(device):
    transformers = pytest.importorskip("transformers")
    scores = random_logits(3, 2000, seed=33, device=device)
    input_ids = torch.randint(0, 2000, (3, 200), generator=torch.Generator().manual_seed(3)).to(device)
    for penalty in (1.3, 0.7):
        # transformers on the CPU: on CUDA, torch divides by the scalar penalty as a multiplication
        # by its reciprocal (1 ulp off IEEE division, which fastsample does on both backends).
        want = transformers.RepetitionPenaltyLogitsProcessor(penalty)(input_ids.cpu(),
                                                                      scores.cpu().clone())
        got = fastsample.process_logits(scores, repetition_penalty=penalty, prompt_token_ids=input_ids)
        assert torch.equal(got.cpu(), want)


def test_presence_and_frequency_hand_computed():
    """OpenAI: mu[j] -= c[j] * frequency + (c[j] > 0) * presence, over generated tokens only."""
    x = torch.zeros(1, 10)
    got = fastsample.process_logits(x, frequency_penalty=0.5, presence_penalty=0.25,
                                    prompt_token_ids=[[1, 1]], output_token_ids=[[2, 2, 2, 5]])
    want = torch.zeros(1, 10)
    want[0, 2] = -(0.5 * 3 + 0.25)
    want[0, 5] = -(0.5 * 1 + 0.25)
    assert torch.equal(got, want)  # prompt token 1 untouched
    counted = fastsample.process_logits(x, frequency_penalty=0.5, presence_penalty=0.25,
                                        output_token_ids=[[2, 5]], output_token_counts=[[3, 1]])
    assert torch.equal(counted, want)


def test_logit_bias_clamped_and_applied_before_penalties():
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    got = fastsample.process_logits(x, logit_bias={0: 500.0, 2: 4.0}, repetition_penalty=2.0,
                                    output_token_ids=[[2]])
    # token 0: 1 + 100 (clamped); token 2: (-1 + 4) / 2 = 1.5 (bias first, then the penalty).
    assert got.tolist() == [[101.0, 2.0, 1.5, 0.5]]


def test_masks_that_leave_one_token(device):
    logits = random_logits(3, 3000, seed=34, device=device)
    words = (3000 + 31) // 32
    bitmask = torch.zeros((3, words), dtype=torch.int32, device=device)
    bitmask[:, 1234 // 32] = 1 << (1234 % 32)
    cases = [dict(allowed_token_ids=[77]), dict(token_bitmask=bitmask),
             dict(banned_token_ids=[i for i in range(3000) if i != 5])]
    for kw, only in zip(cases, (77, 1234, 5)):
        for seed in range(5):
            out = fastsample.sample(logits, temperature=1.5, top_p=0.9, seed=seed, **kw)
            assert out.tolist() == [only] * 3


@pytest.mark.parametrize("vocab", [3000, 3001, 31])
def test_bitmask_rows_that_allow_everything_equal_no_mask(device, vocab):
    """A batch mixing grammar rows with free ones (all bits set, also past V in the last word,
    or only up to V) samples the free rows as without a mask, and the others as masked."""
    logits = random_logits(4, vocab, seed=36, device=device)
    words = (vocab + 31) // 32
    bitmask = torch.full((4, words), -1, dtype=torch.int32, device=device)
    if vocab % 32:
        bitmask[2, -1] = (1 << (vocab % 32)) - 1  # bits past V clear: still every token
    bitmask[1] = 0
    bitmask[1, 0] = 0b1010
    bitmask[3, words // 2] = 0xFFFF  # 16 tokens masked: restricted
    kw = dict(temperature=1.2, top_p=0.95, seed=[1, 2, 3, 4], repetition_penalty=1.1,
              prompt_token_ids=[[1, 2]] * 4)
    got = fastsample.sample(logits, token_bitmask=bitmask, **kw)
    free = fastsample.sample(logits, **kw)
    assert got[0] == free[0] and got[2] == free[2]
    assert int(got[1]) in (1, 3)
    assert torch.equal(got.cpu(), reference.sample(logits.cpu(), token_bitmask=bitmask.cpu(),
                                                   **kw))
    processed = fastsample.process_logits(logits, token_bitmask=bitmask, temperature=1.2)
    assert torch.equal(processed[[0, 2]], fastsample.process_logits(logits[[0, 2]],
                                                                    temperature=1.2))
    assert bool((processed[3, (words // 2) * 32 + 16:(words // 2 + 1) * 32] == NEG_INF).all())


def test_all_masked_rows_are_invalid(device):
    logits = random_logits(3, 100, seed=35, device=device)
    banned = [list(range(100)), [], list(range(50))]
    out = fastsample.sample(logits, banned_token_ids=banned, seed=1, return_valid=True)
    assert out.valid.tolist() == [False, True, True]
    assert int(out.tokens[0]) == -1 and int(out.tokens[2]) >= 50
    processed = fastsample.process_logits(logits, banned_token_ids=banned)
    assert bool((processed[0] == NEG_INF).all())
    with pytest.raises(ValueError, match=r"rows \[0\] have no valid token"):
        fastsample.sample(logits, banned_token_ids=banned, seed=1)


def test_min_tokens_suppresses_eos_and_stop_ids_until_reached():
    x = torch.zeros(2, 20)
    x[:, 7] = 50.0   # EOS dominates
    x[:, 9] = 40.0   # a stop token next
    common = dict(temperature=0.0, min_tokens=3, eos_token_id=7, stop_token_ids=[9])
    assert fastsample.sample(x, num_generated=[0, 3], **common).tolist() == [0, 7]
    # ignore_eos: EOS is not suppressed; stop ids still are.
    assert fastsample.sample(x, num_generated=[0, 3], ignore_eos=True, **common).tolist() == [7, 7]
    # num_generated defaults to the row's output length.
    got = fastsample.sample(x, output_token_ids=[[1, 1], [1, 1, 1]], **common)
    assert got.tolist() == [0, 7]


def test_out_of_range_ids_rejected_on_input():
    x = torch.zeros(2, 10)
    for kw, pattern in [
        (dict(banned_token_ids=[10]), r"banned_token_ids\[0\]\[0\]=10 is out of range"),
        (dict(repetition_penalty=1.1, prompt_token_ids=torch.tensor([[1, -5], [2, 3]])),
         r"prompt_token_ids\[0\]\[1\]=-5 is out of range"),
        (dict(frequency_penalty=0.5, output_token_ids=torch.tensor([[1, 2, -1], [3, -1, 10]])),
         r"output_token_ids\[1\]\[2\]=10 is out of range"),
        (dict(logit_bias={12: 1.0}), r"logit_bias\[0\]: token 12 is out of range"),
        (dict(logit_bias={1: math.nan}), r"logit_bias\[0\]\[1\]=nan"),
        (dict(allowed_token_ids=[]), r"allowed_token_ids=\[\] would mask every token"),
        (dict(repetition_penalty=0.0), r"repetition_penalty=0.0 is out of range"),
        (dict(frequency_penalty=math.inf), r"frequency_penalty=inf is out of range"),
        (dict(token_bitmask=torch.zeros(2, 1, dtype=torch.int64)), r"token_bitmask must be an int32"),
        (dict(min_tokens=-1), r"min_tokens=-1 is out of range"),
        (dict(frequency_penalty=0.1, output_token_ids=[[1, 1]] * 2, output_token_counts=[[1, 2]] * 2),
         r"each token id may appear once"),
    ]:
        with pytest.raises((ValueError, TypeError), match=pattern):
            fastsample.sample(x, **kw)


def test_kernel_ignores_out_of_range_ids_safely():
    """Ids past V (or negative) that reach a kernel are skipped, never used as an index."""
    logits = random_logits(2, 1000, seed=36)
    e = edit_arguments.build(2, 1000, torch.device("cpu"), repetition_penalty=1.5,
                     prompt_token_ids=[[1, 2, 3], [4, 5, 6]], banned_token_ids=[[7, 8], [9, 10]])
    e.prompt.ids[0, 1] = 10**9
    e.prompt.ids[1, 0] = -(10**9)
    e.banned.ids[0, 0] = 1000
    out = torch.empty(2, 1000)
    args = _C.BatchArgs(logits=logits.data_ptr(), batch=2, vocab=1000, row_stride=1000,
                        out_logits=out.data_ptr(), out_row_stride=1000)
    _C.cpu_process(args, e.kernel_args())
    want = fastsample.reference.process_logits(
        logits, repetition_penalty=1.5, prompt_token_ids=[[1, 3], [5, 6]],
        banned_token_ids=[[8], [9, 10]])
    assert torch.equal(out, want)


@pytest.mark.skipif(not fastsample._C.cuda_compiled, reason="fastsample was built without CUDA")
def test_cuda_workspace_grows_with_the_lists_not_the_vocabulary():
    # A GPU block's stage 1-3 scratch: V-bit sets and per-group arrays, then five 32-bit list
    # arrays per listed id (capped at V) and four 32-bit arrays of token slots (a power of two
    # >= twice the listed ids, >= 16); no V-entry array.
    vocab = 128256
    plain = fastsample._C.cuda_workspace_bytes(fastsample._C.BatchArgs(vocab=vocab))

    def with_history(length, v=vocab):
        e = edit_arguments.build(1, v, torch.device("cpu"), repetition_penalty=1.1,
                         prompt_token_ids=torch.zeros(1, length, dtype=torch.int64))
        return fastsample._C.cuda_workspace_bytes(fastsample._C.BatchArgs(vocab=v), e.kernel_args())

    def slots(listed):
        n = 16
        while n < 2 * listed:
            n *= 2
        return n

    short, long = with_history(100), with_history(4000)
    assert plain < short < long
    assert long - short == 5 * 4 * (4000 - 100) + 4 * 4 * (slots(4000) - slots(100))
    assert with_history(300000) == with_history(vocab)  # at most V entries
    # Four V-bit sets and three per-group arrays over the plain scratch, plus 100 ids' share.
    assert short - plain <= 4 * vocab // 8 + 3 * 4 * (vocab // 64 + 1) + 20 * 100 + 16 * 256 + 256
    # The per-id cost does not depend on V.
    big = 1 << 20
    assert with_history(4000, big) - with_history(100, big) == long - short