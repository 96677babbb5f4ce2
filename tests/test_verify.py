"""fastsample.verify: speculative verification of chains and trees (docs/semantics.md,
"Speculative verification"). Exact cases by hand, the rule against the reference, the emitted
tokens' distribution against p (Pearson chi-square, fixed seeds, below the 0.001 quantile), and
each node's p against process_logits on the same history."""
import math

import pytest
import torch

import fastsample
from fastsample import reference
from fastsample.requests import draft_tree

from helpers import chi_square, chi_square_bound, random_logits

NEG = -math.inf


def targets(batch, drafts, vocab, seed=0, scale=2.0):
    return random_logits(batch * (drafts + 1), vocab, seed=seed, scale=scale).reshape(
        batch, drafts + 1, vocab)


def reference_verify(target, drafts, draft_probs=None, parents=None, **kw):
    tree = draft_tree.draft_tree(target, drafts, draft_probs, parents)
    flat = target.reshape(-1, target.shape[2])
    return reference.speculative.verify(flat, tree, **kw)


def test_one_hot_targets_reproduce_the_draft_up_to_the_first_mismatch():
    # p is one-hot at 1, 2, 3, 0 along the chain; the drafts agree twice, then not.
    target = torch.full((1, 4, 4), NEG)
    for j, t in enumerate([1, 2, 3, 0]):
        target[0, j, t] = 0.0
    out = fastsample.verify(target, torch.tensor([[1, 2, 0]]), seed=5)
    assert out.tokens.tolist() == [[1, 2, 3, -1]]
    assert out.num_accepted.tolist() == [2]
    assert out.accepted_index.tolist() == [[0, 1, -1]]
    every = fastsample.verify(target, torch.tensor([[1, 2, 3]]), seed=5)
    assert every.tokens.tolist() == [[1, 2, 3, 0]] and every.num_accepted.tolist() == [3]


def test_greedy_rows_accept_while_the_draft_is_the_argmax():
    target = targets(6, 4, 50, seed=1)
    argmax = target.argmax(dim=2)
    drafts = argmax[:, :4].clone()
    for row, wrong_at in enumerate([0, 1, 2, 3, 4, 2]):
        if wrong_at < 4:
            drafts[row, wrong_at] = (drafts[row, wrong_at] + 1) % 50
    drafts[5, 1] = -1  # a -1 draft ends the chain
    out = fastsample.verify(target, drafts, temperature=0.0)
    for row, accepted in enumerate([0, 1, 2, 3, 4, 1]):
        assert int(out.num_accepted[row]) == accepted
        assert out.tokens[row, :accepted + 1].tolist() == argmax[row, :accepted + 1].tolist()
        assert bool((out.tokens[row, accepted + 1:] == -1).all())


def test_a_draft_with_probability_one_is_kept_and_the_bonus_is_samples_draw():
    """Drafts p gives probability 1 are accepted; the bonus token is what sample draws at the
    last position with offset + S and the drafts counted as output."""
    vocab, drafts = 30, 3
    target = targets(4, drafts, vocab, seed=2)
    sure = torch.tensor([[3, 7, 11], [0, 1, 2], [29, 28, 27], [5, 5, 5]])
    for j in range(drafts):
        target[:, j] = NEG
        target[torch.arange(4), j, sure[:, j]] = 1.0
    kw = dict(repetition_penalty=1.3, top_k=10, seed=[1, 2, 3, 4], offset=[0, 5, 9, 100])
    out = fastsample.verify(target, sure, output_token_ids=[[1], [2], [], [4, 4]], **kw)
    assert out.num_accepted.tolist() == [3, 3, 3, 3]
    bonus = fastsample.sample(target[:, drafts], repetition_penalty=1.3, top_k=10,
                              seed=[1, 2, 3, 4], offset=[3, 8, 12, 103],
                              output_token_ids=[[1, 3, 7, 11], [2, 0, 1, 2], [29, 28, 27],
                                                [4, 4, 5, 5, 5]])
    assert torch.equal(out.tokens[:, drafts], bonus)
    assert torch.equal(out.tokens[:, :drafts], sure)


def test_without_drafts_verify_is_sample():
    target = targets(5, 0, 100, seed=3)
    out = fastsample.verify(target, torch.empty(5, 0, dtype=torch.int64), top_p=0.8, seed=9,
                            offset=4)
    assert torch.equal(out.tokens[:, 0], fastsample.sample(target[:, 0], top_p=0.8, seed=9,
                                                           offset=4))
    assert out.num_accepted.tolist() == [0] * 5


def _chain_case(seed, batch=6, drafts=3, vocab=40):
    g = torch.Generator().manual_seed(seed)
    target = targets(batch, drafts, vocab, seed=seed)
    q = torch.softmax(torch.randn(batch, drafts, vocab, generator=g) * 2, dim=2)
    tokens = torch.multinomial(q.reshape(-1, vocab), 1, generator=g).reshape(batch, drafts)
    tokens[:, 0] = torch.where(torch.arange(batch) % 3 == 0, target[:, 0].argmax(1), tokens[:, 0])
    return target, tokens, q


def _tree_case(seed, batch=5, vocab=40):
    g = torch.Generator().manual_seed(seed)
    parents = torch.tensor([-1, -1, -1, 0, 0, 1, 3]).expand(batch, -1)
    drafts = parents.shape[1]
    target = targets(batch, drafts, vocab, seed=seed)
    q = torch.softmax(torch.randn(batch, drafts, vocab, generator=g) * 2, dim=2)
    tokens = torch.multinomial(q.reshape(-1, vocab), 1, generator=g).reshape(batch, drafts)
    return target, tokens, q, parents


@pytest.mark.parametrize("with_q", [True, False])
@pytest.mark.parametrize("temperature", [1.0, 0.6, [0.0, 1.0, 0.7, 0.0, 1.3, 0.9]])
def test_chains_follow_the_reference_rule(with_q, temperature):
    """Same coins, same draws: the kernels' integer masses and the reference's float64 agree on
    every verdict of these rows."""
    for seed in range(4):
        target, tokens, q = _chain_case(seed)
        kw = dict(draft_probs=q if with_q else None, temperature=temperature, seed=seed * 7,
                  top_k=[0, 5, 20, 0, 3, 0], logprobs=3, logprobs_mode="processed")
        got = fastsample.verify(target, tokens, **kw)
        want = reference_verify(target, tokens, **kw)
        assert torch.equal(got.tokens, want.tokens), seed
        assert torch.equal(got.num_accepted, want.num_accepted)
        assert torch.equal(got.top_ids, want.top_ids)
        assert torch.allclose(got.logprobs, want.logprobs, atol=1e-5)


@pytest.mark.parametrize("with_q", [True, False])
def test_trees_follow_the_reference_rule(with_q):
    for seed in range(4):
        target, tokens, q, parents = _tree_case(seed)
        tokens[0, :3] = target[0, 0].topk(3).indices  # siblings the root is likely to accept
        kw = dict(draft_probs=q if with_q else None, parents=parents, seed=seed, top_p=0.9,
                  logprobs=0)
        got = fastsample.verify(target, tokens, **kw)
        want = reference_verify(target, tokens, **kw)
        assert torch.equal(got.tokens, want.tokens), seed
        assert torch.equal(got.accepted_index, want.accepted_index)
        assert torch.allclose(got.logprobs, want.logprobs, atol=1e-5)


def _proposal_draws(q, rows, seed):
    """rows drafts per position drawn from q [S, V]: int64 [rows, S]."""
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(q, rows, replacement=True, generator=g).T.contiguous()


N = 20000


def _assert_follows(tokens, probs, what):
    counts = torch.bincount(tokens, minlength=probs.shape[0]).double()
    df = int((probs > 0).sum()) - 1
    assert df >= 3, what
    assert chi_square(counts, probs) < chi_square_bound(df), what


@pytest.mark.parametrize("with_q", [True, False])
def test_chain_tokens_are_distributed_as_p(with_q):
    """20000 rows (seeds 0..19999) of one chain, drafts drawn from arbitrary q (with_q) or
    fixed (one-hot proposals): the first token follows p at position 0, and the second, where
    the first draft was accepted, p at position 1."""
    vocab, drafts = 10, 2
    kw = dict(temperature=0.8, top_k=8)
    target = targets(1, drafts, vocab, seed=4)
    g = torch.Generator().manual_seed(5)
    q = torch.softmax(torch.randn(drafts, vocab, generator=g) * 1.5, dim=1)
    if with_q:
        tokens = _proposal_draws(q, N, seed=6)
    else:
        # Fixed drafts: p's likeliest token first, then its second likeliest.
        tokens = torch.tensor([[int(target[0, 0].argmax()),
                                int(target[0, 1].topk(2).indices[1])]]).expand(N, -1)
    out = fastsample.verify(target.expand(N, -1, -1), tokens,
                            draft_probs=q.expand(N, -1, -1) if with_q else None,
                            seed=list(range(N)), **kw)
    p = [torch.softmax(fastsample.process_logits(target[:, j], **kw).double(), 1)[0]
         for j in range(drafts + 1)]
    _assert_follows(out.tokens[:, 0], p[0], "position 0")
    second = out.tokens[out.num_accepted >= 1, 1]
    assert second.numel() > 1000
    _assert_follows(second, p[1], "position 1")


@pytest.mark.parametrize("with_q", [True, False])
def test_tree_tokens_are_distributed_as_p(with_q):
    """A root with three children, each with one child of its own: the first token follows the
    root's p whichever sibling (if any) is accepted, and the token after the first sibling
    follows that node's p."""
    vocab = 10
    parents = torch.tensor([[-1, -1, -1, 0, 1, 2]])
    drafts = parents.shape[1]
    target = targets(1, drafts, vocab, seed=7)
    g = torch.Generator().manual_seed(8)
    q = torch.softmax(torch.randn(drafts, vocab, generator=g) * 1.5, dim=1)
    q[1] = q[2] = q[0]  # siblings drawn i.i.d. from the root's proposal
    if with_q:
        tokens = _proposal_draws(q, N, seed=9)
    else:
        tokens = torch.tensor([[2, 5, 7, 1, 1, 1]]).expand(N, -1)
    out = fastsample.verify(target.expand(N, -1, -1), tokens, parents=parents.expand(N, -1),
                            draft_probs=q.expand(N, -1, -1) if with_q else None,
                            seed=list(range(N)))
    p = torch.softmax(target[0].double(), dim=1)
    _assert_follows(out.tokens[:, 0], p[0], "root")
    through_first = out.accepted_index[:, 0] == 0
    assert int(through_first.sum()) > 1000
    _assert_follows(out.tokens[through_first, 1], p[1], "after the first sibling")
    assert bool((out.accepted_index[:, 1][through_first] != 1).all())


EVERY_STAGE = dict(
    repetition_penalty=1.2, presence_penalty=0.3, frequency_penalty=0.2,
    no_repeat_ngram_size=2, dry_multiplier=0.8, dry_allowed_length=1,
    logit_bias={3: 2.0, 4: -1.0}, sequence_bias={(5, 6): 1.5}, banned_token_ids=[7],
    min_tokens=4, eos_token_id=8, begin_suppress_tokens=[9],
    temperature=0.9, top_k=30, top_p=0.95, min_p=0.01, typical_p=0.98)


@pytest.mark.parametrize("tree", [False, True])
def test_each_nodes_p_is_process_logits_on_its_history(tree):
    """With every stage 1-5 argument set, node j's p equals softmax(process_logits) of its
    logits with the drafts on its path appended to the output history."""
    vocab = 64
    output = [[5, 6, 5], [], [10, 11]]
    if tree:
        parents = torch.tensor([[-1, -1, 0, 2]] * 3)
        tokens = torch.tensor([[6, 5, 5, 6], [1, 2, 3, 4], [11, 10, 11, 12]])
        paths = [[[], [6], [5], [6, 5], [6, 5, 6]], [[], [1], [2], [1, 3], [1, 3, 4]],
                 [[], [11], [10], [11, 11], [11, 11, 12]]]
    else:
        parents = None
        tokens = torch.tensor([[6, 5, 6, 5], [1, 2, 3, 4], [11, -1, 12, 13]])
        paths = [[t[:j] for j in range(5)] for t in tokens.tolist()]
    target = targets(3, 4, vocab, seed=11)
    out = fastsample.verify(target, tokens, parents=parents, output_token_ids=output,
                            return_probs=True, seed=1, **EVERY_STAGE)
    for b in range(3):
        for node in range(5):
            history = output[b] + [t for t in paths[b][node] if t >= 0]
            z = fastsample.process_logits(target[b, node][None], output_token_ids=[history],
                                          **EVERY_STAGE)
            want = torch.softmax(z, dim=1)[0]
            assert torch.allclose(out.probs[b, node], want, atol=1e-6), (b, node)
    assert torch.equal(out.tokens, reference_verify(
        target, tokens, parents=parents, output_token_ids=output, seed=1, **EVERY_STAGE).tokens)


def test_a_per_node_bitmask_masks_each_node():
    vocab, drafts = 64, 2
    target = targets(2, drafts, vocab, seed=12)
    mask = torch.zeros(2, drafts + 1, 2, dtype=torch.int32)
    allowed = [[[3], [4], [5]], [[6], [7], [8]]]
    for b in range(2):
        for j in range(drafts + 1):
            mask[b, j, 0] = 1 << allowed[b][j][0]
    out = fastsample.verify(target, torch.tensor([[3, 4], [6, 9]]), token_bitmask=mask, seed=0)
    assert out.tokens.tolist() == [[3, 4, 5], [6, 7, -1]]


def test_same_seed_same_result_and_rows_independent_of_their_batch():
    target, tokens, q = _chain_case(13, batch=8)
    kw = dict(draft_probs=q, seed=list(range(100, 108)), offset=3, top_p=0.9)
    a = fastsample.verify(target, tokens, **kw)
    b = fastsample.verify(target, tokens, **kw)
    assert torch.equal(a.tokens, b.tokens)
    for row in (0, 5):
        alone = fastsample.verify(target[row:row + 1], tokens[row:row + 1],
                                  draft_probs=q[row:row + 1], seed=100 + row, offset=3, top_p=0.9)
        assert torch.equal(alone.tokens[0], a.tokens[row])
    other = fastsample.verify(target, tokens, **{**kw, "seed": list(range(200, 208))})
    assert not torch.equal(other.tokens, a.tokens)


def test_a_node_without_a_valid_token_on_the_path_raises_unless_asked():
    target = targets(2, 2, 20, seed=14)
    target[1, 0] = NEG  # row 1's root has no valid token
    target[0, 2] = NEG  # row 0's last node: reached only if both drafts are accepted
    drafts = torch.tensor([[int(target[0, 0].argmax()), int(target[0, 1].argmax())], [1, 2]])
    with pytest.raises(ValueError, match=r"rows \[0, 1\] have no valid token"):
        fastsample.verify(target, drafts, temperature=0.0)
    out = fastsample.verify(target, drafts, temperature=0.0, return_valid=True)
    assert out.valid.tolist() == [False, False]
    assert out.tokens.tolist() == [[int(drafts[0, 0]), int(drafts[0, 1]), -1], [-1, -1, -1]]
    drafts[0, 1] = (drafts[0, 1] + 1) % 20  # now row 0 stops before its invalid node
    assert fastsample.verify(target[:1], drafts[:1], temperature=0.0).valid.tolist() == [True]


@pytest.mark.parametrize("call, error, match", [
    (lambda t: fastsample.verify(t[0], torch.zeros(2, 2, dtype=torch.int64)), ValueError,
     r"shape \[B, S \+ 1, V\]"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 3, dtype=torch.int64)), ValueError,
     "needs S \\+ 1 = 4"),
    (lambda t: fastsample.verify(t, torch.tensor([[0, 20], [0, 0]])), ValueError,
     r"draft_token_ids\[0\]\[1\]=20 is out of range"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2)), TypeError, "integer tensor"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64),
                                 parents=torch.tensor([[-1, 1], [-1, 0]])),
     ValueError, r"parents\[0\]\[1\]=1 is out of range"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64),
                                 draft_probs=torch.ones(2, 2, 19)), ValueError, "draft_probs"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64), tempreature=0.5),
     TypeError, "tempreature"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64), top_p=1.5),
     ValueError, "top_p"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64),
                                 output_token_ids=[[1], [2]], output_token_counts=[[1], [1]],
                                 frequency_penalty=0.5), ValueError, "output_token_counts"),
    (lambda t: fastsample.verify(t, torch.zeros(2, 2, dtype=torch.int64),
                                 token_bitmask=torch.zeros(2, 2, 1, dtype=torch.int32)),
     ValueError, "token_bitmask"),
])
def test_bad_input_is_a_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(targets(2, 2, 20, seed=15))


def test_layouts_of_drafts_and_proposals():
    """A transposed [1, S] draft tensor, a proposal shared by every draft (expand: stride 0),
    empty batches: the same as their contiguous forms, or empty results."""
    target = targets(1, 3, 30, seed=17)
    q = torch.softmax(torch.randn(30, generator=torch.Generator().manual_seed(1)), 0)
    drafts = torch.tensor([[4], [9], [2]]).t()
    shared = fastsample.verify(target, drafts, draft_probs=q.expand(1, 3, 30), seed=3)
    plain = fastsample.verify(target, drafts.contiguous(),
                              draft_probs=q.repeat(1, 3, 1).contiguous(), seed=3)
    assert torch.equal(shared.tokens, plain.tokens)
    empty = fastsample.verify(targets(1, 2, 30)[:0], torch.empty(0, 2, dtype=torch.int64),
                              repetition_penalty=1.2)
    assert empty.tokens.shape == (0, 3) and empty.num_accepted.shape == (0,)
    with pytest.raises(ValueError, match=r"shape \[B, S \+ 1, V\]"):
        fastsample.verify(torch.zeros(2, 0, 30), torch.empty(2, 0, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"parents: expected shape \[B, S\] = \[2, 2\]"):
        fastsample.verify(targets(2, 2, 30), torch.zeros(2, 2, dtype=torch.int64),
                          parents=torch.tensor([[-1], [-1]]))


def test_advance_verified_checks_its_tokens():
    batch = fastsample.SamplingBatch([fastsample.SamplingParams(repetition_penalty=1.2)],
                                     vocab_size=30)
    with pytest.raises(ValueError, match="int64 tensor"):
        batch.advance_verified(torch.tensor([[1, 2]]), [3])
    with pytest.raises(ValueError, match="one count >= 1"):
        batch.advance_verified(torch.tensor([[1, 2]]), [0])
    batch.advance_verified(torch.tensor([[1, 2, -1]]), [2])
    assert batch.kwargs()["output_token_ids"].tolist()[0][:2] == [1, 2]


def test_too_many_children_is_refused():
    target = targets(1, 17, 40, seed=16)
    with pytest.raises(ValueError, match="has 17 children; verify tries at most 16"):
        fastsample.verify(target, torch.arange(17)[None], parents=torch.full((1, 17), -1))


def test_sampler_verify_records_what_verify_emits_and_moves_offsets_by_it():
    """Sampler.verify equals fastsample.verify on the requests' parameters, histories, seeds
    and offsets; the next step's draw uses offset + the tokens emitted."""
    vocab, drafts = 50, 3
    params = [fastsample.SamplingParams(seed=11, temperature=0.9, repetition_penalty=1.3,
                                        max_tokens=100),
              fastsample.SamplingParams(seed=12, top_k=5, max_tokens=100, logprobs=2)]
    sampler = fastsample.Sampler(vocab, eos_token_id=[])
    sampler.add("a", params[0], prompt_token_ids=[1, 2])
    sampler.add("b", params[1], prompt_token_ids=[3])
    first = sampler.step(random_logits(2, vocab, seed=20))
    outputs = [[first[0].token], [first[1].token]]
    target = targets(2, drafts, vocab, seed=21)
    tokens = target[:, :drafts].argmax(dim=2)
    got = sampler.verify(target, tokens)
    for row, (p, prompt) in enumerate(zip(params, [[1, 2], [3]])):
        want = fastsample.verify(target[row:row + 1], tokens[row:row + 1], seed=p.seed, offset=1,
                                 temperature=p.temperature, top_k=p.top_k,
                                 repetition_penalty=p.repetition_penalty,
                                 prompt_token_ids=[prompt], output_token_ids=[outputs[row]],
                                 logprobs=2)
        n = int(want.num_accepted[0]) + 1
        assert got[row].tokens == want.tokens[0, :n].tolist()
        assert got[row].num_accepted == n - 1
        outputs[row] += got[row].tokens
    assert got[1].logprobs is not None and len(got[1].logprobs) == len(got[1].tokens)
    assert got[0].logprobs is None
    after = sampler.step(random_logits(2, vocab, seed=22))
    for row, p in enumerate(params):
        want = fastsample.sample(random_logits(2, vocab, seed=22)[row:row + 1], seed=p.seed,
                                 offset=len(outputs[row]), temperature=p.temperature,
                                 top_k=p.top_k, repetition_penalty=p.repetition_penalty,
                                 prompt_token_ids=[[1, 2], [3]][row:row + 1],
                                 output_token_ids=[outputs[row]])
        assert after[row].token == int(want[0])


def test_sampler_verify_stops_at_a_finishing_token():
    vocab = 20
    target = torch.full((1, 4, vocab), NEG)
    for j, t in enumerate([4, 7, 9, 3]):
        target[0, j, t] = 0.0
    sampler = fastsample.Sampler(vocab, eos_token_id=7)
    sampler.add("r", fastsample.SamplingParams(seed=0, max_tokens=50), prompt_token_ids=[1])
    out = sampler.verify(target, torch.tensor([[4, 7, 9]]))
    assert out[0].tokens == [4, 7] and out[0].finished and out[0].finish_reason == "eos"
    assert sampler.request_ids == []


def test_sampler_verify_refuses_what_it_cannot_verify():
    sampler = fastsample.Sampler(20)
    sampler.add("m", fastsample.SamplingParams(mirostat=2, seed=1), prompt_token_ids=[1])
    with pytest.raises(ValueError, match="mirostat"):
        sampler.verify(targets(1, 2, 20), torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match=r"shape \[1, S \+ 1, 20\]"):
        sampler.verify(targets(1, 2, 20)[0], torch.tensor([[1, 2]]))
