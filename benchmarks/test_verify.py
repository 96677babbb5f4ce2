"""Speculative verification benchmark: fastsample.verify beside a plain-torch implementation of
the same rule (softmax, gather, accept, residual, multinomial: what FlashInfer's and vLLM's
samplers compute) for B = 64 chains of S = 4 drafts over V = 128256, in the same run, on the
benchmark device (conftest.bench_device). Drafts are drawn from q, so about half of them are
rejected somewhere along the chain. report.py prints torch-rule / fastsample."""
import pytest
import torch

import fastsample
from cases import env_list
from conftest import bench_device

BATCH, DRAFTS = 64, 4
VOCABS = env_list("FASTSAMPLE_BENCH_VERIFY_VOCABS", "128256")


def torch_rule(target, drafts, q, gen):
    """The chain rule at T = 1 in plain torch: tokens [B, S + 1] (-1 after) and num_accepted."""
    batch, positions, vocab = target.shape
    rows = torch.arange(batch, device=target.device)
    p = torch.softmax(target.float(), dim=-1)
    p_draft = p[:, :-1].gather(2, drafts[..., None])[..., 0]
    if q is None:
        q_draft = torch.ones_like(p_draft)
    else:
        q_draft = q.gather(2, drafts[..., None])[..., 0]
    u = torch.rand(p_draft.shape, generator=gen, device=target.device)
    accepted = (u * q_draft < p_draft).to(torch.int64).cumprod(dim=1).sum(dim=1)
    p_end = p[rows, accepted]
    last = accepted.clamp(max=positions - 2)
    if q is None:
        q_end = torch.nn.functional.one_hot(drafts[rows, last], vocab).to(p.dtype)
    else:
        q_end = q[rows, last]
    q_end = q_end * (accepted < positions - 1)[:, None]
    residual = (p_end - q_end).clamp(min=0)
    emitted = torch.multinomial(residual, 1, generator=gen)[:, 0]
    tokens = torch.cat([drafts, torch.full_like(drafts[:, :1], -1)], dim=1)
    position = torch.arange(positions, device=target.device)[None]
    tokens = torch.where(position < accepted[:, None], tokens, -1)
    tokens[rows, accepted] = emitted
    return tokens, accepted


@pytest.mark.parametrize("impl", ["fastsample", "torch-rule"])
@pytest.mark.parametrize("proposal", ["draft-probs", "one-hot"])
@pytest.mark.parametrize("vocab", VOCABS)
def test_verify_chain(benchmark, vocab, proposal, impl):
    device = bench_device()
    if device == "cuda" and not fastsample.build_info()["cuda_enabled"]:
        pytest.skip("fastsample was built without CUDA")
    gen = torch.Generator(device=device).manual_seed(0)
    target = torch.randn(BATCH, DRAFTS + 1, vocab, generator=gen, device=device) * 3
    q = torch.softmax(target[:, :DRAFTS] + torch.randn(BATCH, DRAFTS, vocab, generator=gen,
                                                       device=device), dim=-1)
    drafts = torch.multinomial(q.reshape(-1, vocab), 1, generator=gen).reshape(BATCH, DRAFTS)
    q = q if proposal == "draft-probs" else None
    benchmark.group = f"verify chain {proposal} B={BATCH} S={DRAFTS} V={vocab} {device}"
    if impl == "fastsample":
        seeds = torch.arange(BATCH, device=device)
        fn = lambda: fastsample.verify(target, drafts, draft_probs=q, seed=seeds)  # noqa: E731
    else:
        fn = lambda: torch_rule(target, drafts, q, gen)  # noqa: E731
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run():
        out = fn()
        sync()
        return out

    out = run()
    accepted = out.num_accepted if impl == "fastsample" else out[1]
    benchmark.extra_info["mean_accepted"] = float(accepted.double().mean())
    benchmark(run)
