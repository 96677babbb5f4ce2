"""Mirostat v1 and v2 (llama.cpp's rules) in the decode loop: each step's truncation and mu
update against a step-by-step Python rendering of llama.cpp's sampler, v1's k against a port of
its float32 estimate, the surprise settling at tau, every path a request takes, and the errors."""
import dataclasses
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams
from fastsample.requests import mirostat
from fastsample.transformers import FastLogitsProcessor


def llama_cpp_v1_k(z, mu, vocab, m=100):
    """llama.cpp's llama_sampler_mirostat_apply up to top-k: k from the softmax of z, in float32."""
    f32 = lambda v: float(torch.tensor(v, dtype=torch.float32))  # noqa: E731
    p = sorted(torch.softmax(torch.tensor(z, dtype=torch.float32), -1).tolist(), reverse=True)
    sum_ti_bi = sum_ti_sq = 0.0
    for i in range(min(m - 1, len(p) - 1)):
        t_i = f32(math.log(f32((i + 2) / (i + 1))))
        b_i = f32(math.log(f32(p[i] / p[i + 1]))) if p[i + 1] > 0 else math.inf
        sum_ti_bi = f32(sum_ti_bi + f32(t_i * b_i))
        sum_ti_sq = f32(sum_ti_sq + f32(t_i * t_i))
    s_hat = f32(sum_ti_bi / sum_ti_sq)
    eps = f32(s_hat - 1)
    k = f32((f32(eps * f32(2.0 ** mu)) / f32(1 - f32(vocab ** -eps))) ** f32(1 / s_hat))
    # top_k(max(int(k), 1)) keeps at most the candidates there are.
    return min(max(int(k), 1), vocab) if math.isfinite(k) else (1 if math.isnan(k) else vocab)


def zipf_logits(vocab, s=1.2, scale=1.0, seed=0):
    """log p of a Zipf law (the shape mirostat assumes), shuffled over the vocabulary."""
    g = torch.Generator().manual_seed(seed)
    ranks = torch.arange(1, vocab + 1, dtype=torch.float32)
    return (-s * scale * ranks.log())[torch.randperm(vocab, generator=g)][None]


@pytest.mark.parametrize("seed", range(4))
def test_v1_k_equals_llama_cpp(seed):
    g = torch.Generator().manual_seed(seed)
    for case in range(25):
        V = int(torch.randint(2, 400, (1,), generator=g))
        z = zipf_logits(V, s=0.6 + float(torch.rand(1, generator=g)) * 1.5, seed=case)[0]
        z = z + 0.05 * torch.randn(V, generator=g)
        mu = float(torch.rand(1, generator=g)) * 12
        got = int(mirostat.v1_top_k(z[None], torch.tensor([mu]), V)[0])
        assert got == llama_cpp_v1_k(z.tolist(), mu, V), (V, mu)


def test_v1_k_edges():
    """Fewer than two finite logits (s = inf): k = 1; a flat row (s = 0): k is 1 or V."""
    z = torch.tensor([[0.0, -math.inf, -math.inf, -math.inf]])
    assert mirostat.v1_top_k(z, torch.tensor([10.0]), 4).tolist() == [1]
    flat = torch.zeros(1, 8)
    assert mirostat.v1_top_k(flat, torch.tensor([10.0]), 8).tolist() == [8]
    assert mirostat.v1_top_k(flat, torch.tensor([0.0]), 8).tolist() == [1]


def _run(version, steps, vocab=64, tau=3.0, eta=0.1, temperature=0.9, seed=7):
    """A Sampler over one fixed Zipf row; returns (tokens, mu before each step, mu after)."""
    x = zipf_logits(vocab, seed=1)
    sampler = fastsample.Sampler(vocab)
    sampler.add("r", SamplingParams(mirostat=version, mirostat_tau=tau, mirostat_eta=eta,
                                    temperature=temperature, seed=seed), [])
    tokens, mus = [], [2 * tau]  # mu starts at 2 tau; the row joins at the first step
    for _ in range(steps):
        tokens.append(sampler.step(x)[0].token)
        mus.append(float(sampler._batch.mirostat_mu[0]))
    return x, tokens, mus


@pytest.mark.parametrize("version", [1, 2])
def test_each_step_follows_llama_cpp(version):
    """Step by step: the token lies in llama.cpp's truncation for the current mu (v2: surprise
    <= mu; v1: the top k), and mu moves by eta x (-log2 of its renormalized probability - tau),
    to 1e-5."""
    tau, eta, T = 3.0, 0.1, 0.9
    x, tokens, mus = _run(version, 40, tau=tau, eta=eta, temperature=T)
    z = (x[0] / T).double()
    p = torch.softmax(z, -1)
    for t, mu, after in zip(tokens, mus, mus[1:]):
        if version == 2:
            keep = -torch.log2(p) <= mu + 1e-6
            keep[p.argmax()] = True
        else:
            k = llama_cpp_v1_k(z.tolist(), mu, len(z))
            keep = torch.zeros_like(p, dtype=torch.bool)
            keep[torch.topk(z, k).indices] = True
        assert keep[t], (t, mu)
        q = p[t] / p[keep].sum()
        assert after == pytest.approx(mu - eta * (-math.log2(q) - tau), abs=1e-5)


@pytest.mark.parametrize("version", [1, 2])
def test_surprise_settles_at_tau(version):
    """Fixed seed, 600 steps: the mean surprise of the last 400 draws (under the truncated,
    renormalized distribution) lies within 0.25 of tau."""
    tau = 3.0
    x, tokens, mus = _run(version, 600, vocab=2000, tau=tau, eta=0.1, temperature=1.0)
    z = x[0].double()
    p = torch.softmax(z, -1)
    surprises = []
    for t, mu in zip(tokens, mus):
        if version == 2:
            keep = (-torch.log2(p) <= mu + 1e-6) | (p == p.max())
        else:
            keep = torch.zeros_like(p, dtype=torch.bool)
            keep[torch.topk(z, llama_cpp_v1_k(z.tolist(), mu, len(z))).indices] = True
        surprises.append(-math.log2(float(p[t] / p[keep].sum())))
    mean = sum(surprises[200:]) / 400
    assert abs(mean - tau) < 0.25, mean


def test_rows_keep_their_own_mu_in_a_batch():
    """A mirostat row beside a plain row and another mirostat row: each row's tokens equal its
    run alone (rows independent of their batch), and the plain row never truncates."""
    V = 64
    x = zipf_logits(V, seed=1)
    params = [SamplingParams(mirostat=2, mirostat_tau=2.0, seed=1),
              SamplingParams(seed=2, temperature=0.8),
              SamplingParams(mirostat=1, mirostat_tau=4.0, seed=3)]
    together = fastsample.Sampler(V)
    for i, p in enumerate(params):
        together.add(i, p, [])
    alone = []
    for i, p in enumerate(params):
        s = fastsample.Sampler(V)
        s.add(i, p, [])
        alone.append(s)
    for _ in range(25):
        got = [o.token for o in together.step(x.expand(3, -1).contiguous())]
        assert got == [s.step(x)[0].token for s in alone]


def test_a_row_keeps_its_mu_when_another_leaves():
    """Two mirostat requests; after 6 steps the first leaves: the second's tokens equal its run
    alone (its mu moved with its row)."""
    V = 64
    x = zipf_logits(V, seed=1)
    a, b = (SamplingParams(mirostat=2, mirostat_tau=t, seed=s) for t, s in ((2.0, 1), (4.0, 2)))
    both, alone = fastsample.Sampler(V), fastsample.Sampler(V)
    both.add("a", a, [])
    both.add("b", b, [])
    alone.add("b", b, [])
    for step in range(14):
        if step == 6:
            both.remove("a")
        rows = len(both.request_ids)
        got = both.step(x.expand(rows, -1).contiguous())[-1].token
        assert got == alone.step(x)[0].token


def test_a_batch_needs_the_logprobs_to_advance():
    """sample(logits, batch=...) returns the processed logprobs a mirostat row needs, and
    advance() takes them; without them it refuses (mu would stand still)."""
    V = 32
    x = zipf_logits(V)
    batch = fastsample.SamplingBatch([SamplingParams(mirostat=2, mirostat_tau=2.0, seed=0)])
    out = fastsample.sample(x, batch=batch)
    with pytest.raises(ValueError, match="mirostat"):
        batch.advance(out.tokens)
    with pytest.raises(ValueError, match="mirostat"):
        batch.kwargs()  # the keywords of a mirostat step need its logits
    # mu 4: the tokens with surprise <= 4 stay; q is the token's share of their mass.
    p = torch.softmax(x[0].double(), -1)
    keep = -torch.log2(p) <= 4.0
    t = int(out.tokens[0])
    q = float(p[t] / p[keep].sum())
    assert keep[t] and float(out.logprobs[0]) == pytest.approx(math.log(q), abs=1e-5)
    batch.advance(out.tokens, logprobs=out.logprobs)
    assert float(batch.mirostat_mu[0]) == pytest.approx(4.0 - 0.1 * (-math.log2(q) - 2.0),
                                                        abs=1e-5)
    kw = batch.kwargs(logits=x)  # the next step's truncation, from the new mu
    assert float(kw["epsilon_cutoff"][0]) == pytest.approx(2 ** -float(batch.mirostat_mu[0]))


def test_generate_runs_it():
    """fastsample.generate on a tiny Llama: seeded mirostat runs repeat, and differ from the
    same request without mirostat."""
    from tiny_models import llama
    model = llama()
    p = SamplingParams(mirostat=2, mirostat_tau=1.0, seed=5, max_tokens=12)
    a = fastsample.generate(model, [[5, 9, 17]], p)[0].token_ids
    b = fastsample.generate(model, [[5, 9, 17]], p)[0].token_ids
    assert a == b and len(a) == 12
    plain = fastsample.generate(model, [[5, 9, 17]], dataclasses.replace(p, mirostat=0))
    assert plain[0].token_ids != a


def test_adapters_read_it():
    p = fastsample.from_openai({"mirostat": 2, "mirostat_tau": 4.0, "mirostat_eta": 0.2})
    assert (p.mirostat, p.mirostat_tau, p.mirostat_eta) == (2, 4.0, 0.2)
    with pytest.raises(ValueError, match="top_p"):
        fastsample.from_openai({"mirostat": 1, "top_p": 0.9})


@pytest.mark.parametrize("kw, error, match", [
    (dict(mirostat=3), ValueError, "mirostat"),
    (dict(mirostat=1.0), TypeError, "mirostat"),
    (dict(mirostat=2, mirostat_tau=-1.0), ValueError, "mirostat_tau"),
    (dict(mirostat=2, mirostat_eta=math.nan), ValueError, "mirostat_eta"),
    (dict(mirostat=2, top_k=40), ValueError, "top_k"),
    (dict(mirostat=1, temperature=0.0), ValueError, "greedy"),
    (dict(mirostat=2, logprobs=2), ValueError, "processed"),
])
def test_bad_values_are_rejected(kw, error, match):
    with pytest.raises(error, match=match):
        SamplingParams(**kw)


def test_paths_that_cannot_run_it_refuse():
    p = SamplingParams(mirostat=2)
    with pytest.raises(ValueError, match="mirostat"):
        FastLogitsProcessor.from_params(p)
    with pytest.raises(ValueError, match="mirostat"):
        fastsample.SamplingBatch([p]).filter_kwargs()
    sampler = fastsample.Sampler(16)
    sampler.add("a", SamplingParams(logprobs=1), [])
    with pytest.raises(ValueError, match="logprobs_mode"):
        sampler.add("b", p, [])
