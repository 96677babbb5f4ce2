"""CUDA-only behaviour: agreement with the CPU kernels, device-resident parameters, streams,
CUDA-graph capture and torch.compile. Skipped (with the reason) where no GPU is present; the
keep-set and sampling suites run on CUDA through the `device` fixture as well."""
import math

import pytest
import torch

import fastsample
from conftest import requires_cuda
from helpers import assert_keep_sets_match, random_logits

pytestmark = requires_cuda

HF_DEFAULT = dict(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("params", [HF_DEFAULT, dict(temperature=0.8, top_p=0.9),
                                    dict(temperature=1.2, top_k=2000)],
                         ids=["hf-default", "top-p", "top-k-large"])
def test_cuda_token_equals_cpu_token(dtype, params):
    """Same Philox stream and integer masses: tokens agree except at float-rounding boundaries.
    Tolerance: at least 99.5% of 256 rows."""
    logits = random_logits(256, 32000, dtype, seed=21)
    seeds = list(range(256))
    cpu = fastsample.sample(logits, seed=seeds, **params)
    gpu = fastsample.sample(logits.cuda(), seed=seeds, **params)
    assert gpu.device.type == "cuda"
    assert float((gpu.cpu() == cpu).double().mean()) >= 0.995


def test_cuda_keep_sets_equal_cpu_keep_sets():
    logits = random_logits(8, 128256, seed=22)
    cpu = fastsample.process_logits(logits, **HF_DEFAULT)
    gpu = fastsample.process_logits(logits.cuda(), **HF_DEFAULT)
    assert torch.equal(gpu.cpu(), cpu)


def test_xtc_band_equals_cpu_with_device_seeds():
    """XTC's band (its coin from device seed/offset tensors), the draw over it and processed
    logprobs on the whole-row path: bit for bit the CPU kernels'."""
    logits = random_logits(64, 128256, seed=24)
    logits[:, 7:11] = torch.tensor([20.0, 19.8, 19.6, 19.4])
    kw = dict(xtc_threshold=0.05, xtc_probability=0.6, seed=torch.arange(64), offset=5)
    cpu = fastsample.process_logits(logits, **kw)
    gpu = fastsample.process_logits(logits.cuda(), **{**kw, "seed": kw["seed"].cuda()})
    assert torch.equal(gpu.cpu(), cpu)
    a = fastsample.sample(logits, logprobs=5, logprobs_mode="processed", **kw)
    b = fastsample.sample(logits.cuda(), logprobs=5, logprobs_mode="processed",
                          **{**kw, "seed": kw["seed"].cuda()})
    for x, y in zip(a, b):
        assert torch.equal(x, y.cpu())


@pytest.mark.parametrize("params", [dict(typical_p=0.9, epsilon_cutoff=1e-5),
                                    dict(top_k=50, typical_p=0.5, eta_cutoff=1e-3),
                                    dict(temperature=0.8, eta_cutoff=3e-4)])
def test_entropy_filters_equal_cpu(params):
    """typical-p, epsilon and eta on the whole-row and the top-k list paths, with the draw
    and processed logprobs over their band: bit for bit the CPU kernels'."""
    logits = random_logits(64, 128256, seed=25)
    logits[:, 3] += 12.0  # a top far above the typical value in most rows
    cpu = fastsample.process_logits(logits, **params)
    assert torch.equal(fastsample.process_logits(logits.cuda(), **params).cpu(), cpu)
    seeds = torch.arange(64)
    a = fastsample.sample(logits, seed=seeds, logprobs=5, logprobs_mode="processed", **params)
    b = fastsample.sample(logits.cuda(), seed=seeds.cuda(), logprobs=5,
                          logprobs_mode="processed", **params)
    for x, y in zip(a, b):
        assert torch.equal(x, y.cpu())


def test_history_edits_equal_cpu():
    """Repeated n-grams of a long history (a small alphabet, padding inside the lists) masked,
    sequence biases, begin-suppressed tokens and DRY penalties, on the patched path: the CUDA kernels' keep-sets and tokens are the
    CPU kernels'."""
    g = torch.Generator().manual_seed(3)
    logits = random_logits(16, 128256, seed=26)
    logits[:, :8] += 6.0  # the history's tokens are the likely ones
    prompt = torch.randint(0, 8, (16, 3000), generator=g)
    output = torch.randint(0, 8, (16, 500), generator=g)
    prompt[:, 2000:2100] = -1
    params = dict(no_repeat_ngram_size=torch.arange(16) % 5, prompt_token_ids=prompt,
                  output_token_ids=output, top_k=20,
                  sequence_bias=[{(3, 4): -2.0, (4,): 1.0, (1, 2, 4): -math.inf}] * 16,
                  begin_suppress_tokens=[0, 1], num_generated=torch.arange(16) % 2,
                  dry_multiplier=(torch.arange(16) % 3).float() * 0.5,
                  dry_allowed_length=torch.arange(16) % 4, dry_penalty_last_n=1000,
                  dry_sequence_breakers=[[5], [6, 7]])
    gpu_params = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    cpu = fastsample.process_logits(logits, **params)
    assert torch.equal(fastsample.process_logits(logits.cuda(), **gpu_params).cpu(), cpu)
    seeds = torch.arange(16)
    a = fastsample.sample(logits, seed=seeds, **params)
    b = fastsample.sample(logits.cuda(), seed=seeds.cuda(), **gpu_params)
    assert torch.equal(a, b.cpu())


def test_grammar_rows_on_the_gpu_equal_the_cpu():
    """A Sampler on CUDA copies each step's grammar mask to the device (pinned, async): its
    tokens equal a CPU Sampler's on the same logits."""
    pytest.importorskip("xgrammar")
    from tiny_models import bpe_tokenizer
    tok = bpe_tokenizer()
    params = fastsample.SamplingParams(structured_output={"guided_regex": "[a-z]{3,8}"}, seed=4,
                                       max_tokens=20)
    samplers = [fastsample.Sampler(320, device=d, tokenizer=tok) for d in ("cpu", "cuda")]
    for s in samplers:
        s.add("r", params)
    g = torch.Generator().manual_seed(0)
    while len(samplers[0]):
        logits = torch.randn(1, 320, generator=g) * 2
        a, b = samplers[0].step(logits), samplers[1].step(logits.cuda())
        assert a[0].token == b[0].token and a[0].finish_reason == b[0].finish_reason


def test_mirostat_on_the_gpu_equals_the_cpu():
    """Mirostat v1 and v2 rows keep mu on the GPU (v1's estimate reads the step's processed
    logits there): their tokens and mu equal a CPU Sampler's on the same logits."""
    params = [fastsample.SamplingParams(mirostat=m, mirostat_tau=3.0, seed=s)
              for m, s in ((1, 1), (2, 2))]
    samplers = [fastsample.Sampler(5000, device=d) for d in ("cpu", "cuda")]
    for s in samplers:
        for i, p in enumerate(params):
            s.add(i, p, [])
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        logits = torch.randn(2, 5000, generator=g) * 3
        a, b = samplers[0].step(logits), samplers[1].step(logits.cuda())
        assert [o.token for o in a] == [o.token for o in b]
    assert torch.allclose(samplers[0]._batch.mirostat_mu, samplers[1]._batch.mirostat_mu.cpu(),
                          atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_contrastive_scores_on_the_gpu_equal_the_cpu_bit_for_bit(dtype):
    """The scoring kernel on the same tensors: several positions per warp, hidden sizes around
    the 32 lanes, k = 64, strided context, a fully masked row, subnormal values (a flush to
    zero on either side would show)."""
    g = torch.Generator().manual_seed(3)
    for B, L, k, D in ((3, 40, 64, 257), (5, 17, 7, 31), (2, 3, 1, 1)):
        wide = torch.randn(B, L + 2, D + 3, generator=g)
        wide[:, :, ::5] *= 1e-39  # float32 subnormals (bfloat16 keeps them too)
        context = wide.to(dtype)[:, 1:1 + L, 2:2 + D]
        candidates = torch.randn(B, k, D, generator=g).to(dtype)
        mask = (torch.rand(B, L, generator=g) < 0.7).to(torch.int64)
        mask[-1] = 0
        probs = torch.softmax(torch.randn(B, k, generator=g), -1)
        alpha = torch.rand(B, generator=g, dtype=torch.float64)
        cpu = fastsample.contrastive_scores(context, mask, candidates, probs, alpha)
        gpu = fastsample.contrastive_scores(context.cuda(), mask.cuda(), candidates.cuda(),
                                            probs.cuda(), alpha.cuda())
        assert gpu.device.type == "cuda"
        assert torch.equal(gpu.cpu().view(torch.int32), cpu.view(torch.int32)), (B, L, k, D)


def test_decoding_strategies_on_the_gpu_equal_the_cpu():
    """Beam search, contrastive search and n samples on a tiny Llama on the GPU: the same
    tokens as on the CPU (the candidates' top-k and the draws come from the same kernels)."""
    pytest.importorskip("transformers")
    from tiny_models import llama
    model = llama()
    prompts = [[4, 5, 6, 7], [8, 9], [10, 11, 12, 13, 14]]
    for params in (fastsample.SamplingParams(temperature=0.0, num_beams=3, n=2, max_tokens=8,
                                             eos_token_ids=[1], repetition_penalty=1.2),
                   fastsample.SamplingParams(temperature=0.0, top_k=4, penalty_alpha=0.6,
                                             max_tokens=8, eos_token_ids=[1]),
                   fastsample.SamplingParams(seed=3, n=3, max_tokens=8, top_p=0.9)):
        cpu = fastsample.generate(model, prompts, params)
        gpu = fastsample.generate(model.cuda(), prompts, params)
        model.cpu()
        assert [[c.token_ids for c in r.completions] for r in gpu] == \
            [[c.token_ids for c in r.completions] for r in cpu]


def test_verify_on_the_gpu_equals_the_cpu():
    """Chains and a tree with proposals, penalties over each node's path, greedy and sampled
    rows: the same verdicts, tokens and logprobs as the CPU kernels (integer masses)."""
    g = torch.Generator().manual_seed(5)
    for B, S, V, tree in ((6, 4, 128256, False), (4, 6, 32000, True)):
        target = torch.randn(B, S + 1, V, generator=g) * 3
        q = torch.softmax(torch.randn(B, S, V, generator=g) * 3, dim=2)
        drafts = torch.multinomial(q.reshape(-1, V), 1, generator=g).reshape(B, S)
        drafts[:, 0] = target[:, 0].argmax(1)
        parents = torch.tensor([-1, -1, -1, 0, 0, 1][:S]).expand(B, -1) if tree else None
        kw = dict(parents=parents, seed=list(range(B)), offset=3, top_k=[0, 8, 40, 0, 3, 0][:B],
                  temperature=[1.0, 0.0, 0.8, 1.1, 1.0, 0.7][:B], repetition_penalty=1.2,
                  output_token_ids=[[1, 2, 3]] * B, logprobs=2)
        cpu = fastsample.verify(target, drafts, draft_probs=q, **kw)
        gpu = fastsample.verify(target.cuda(), drafts.cuda(), draft_probs=q.cuda(), **kw)
        assert torch.equal(gpu.tokens.cpu(), cpu.tokens)
        assert torch.equal(gpu.accepted_index.cpu(), cpu.accepted_index)
        assert torch.allclose(gpu.logprobs.cpu(), cpu.logprobs, atol=1e-6)
    model = __import__("tiny_models").llama()
    params = fastsample.SamplingParams(seed=2, max_tokens=10, eos_token_ids=[])
    cpu = fastsample.generate(model, [[4, 5, 6]], params, draft_model=model)
    gpu = fastsample.generate(model.cuda(), [[4, 5, 6]], params, draft_model=model)
    model.cpu()
    assert gpu[0].token_ids == cpu[0].token_ids


def test_device_tensor_parameters():
    logits = random_logits(6, 5000, seed=23, device="cuda")
    params = dict(temperature=torch.tensor([0.0, 0.7, 1.0, 1.3, 0.5, 0.9], device="cuda"),
                  top_k=torch.tensor([0, 50, -1, 3000, 7, 1], device="cuda"),
                  top_p=torch.tensor([1.0, 0.9, 0.5, 0.95, 0.3, 1.0], device="cuda"),
                  min_p=torch.tensor([0.0, 0.05, 0.0, 0.2, 0.0, 0.0], device="cuda"))
    got = fastsample.process_logits(logits, **params)
    host = {k: v.tolist() for k, v in params.items()}
    assert_keep_sets_match(logits.cpu(), got.cpu(), **host)
    seeds = torch.arange(6, device="cuda")
    offsets = torch.full((6,), 3, device="cuda")
    a = fastsample.sample(logits, seed=seeds, offset=offsets, **params)
    b = fastsample.sample(logits.cpu(), seed=list(range(6)), offset=3, **host)
    assert float((a.cpu() == b).double().mean()) >= 5 / 6


def test_runs_on_the_current_stream():
    logits = random_logits(4, 50000, seed=24, device="cuda")
    want = fastsample.sample(logits, seed=5, **HF_DEFAULT)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        got = fastsample.sample(logits, seed=5, return_valid=True, **HF_DEFAULT)
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(got.tokens, want) and bool(got.valid.all())


def test_cuda_graph_capture_and_replay():
    """A decode step with device-resident parameters is captured once and replayed: no host
    sync (capture would fail on one) and replays read the current logits, seeds and offsets."""
    batch, vocab = 8, 32000
    logits = random_logits(batch, vocab, seed=25, device="cuda")
    temperature = torch.full((batch,), 0.8, device="cuda")
    top_p = torch.full((batch,), 0.9, device="cuda")
    seeds = torch.arange(batch, device="cuda")
    offsets = torch.zeros(batch, dtype=torch.int64, device="cuda")

    def step():
        return fastsample.sample(logits, temperature=temperature, top_k=50, top_p=top_p,
                                 seed=seeds, offset=offsets, return_valid=True)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # warm-up outside capture (allocator, lazy init)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for t in range(3):
        logits.copy_(random_logits(batch, vocab, seed=100 + t, device="cuda"))
        offsets.fill_(t)
        graph.replay()
        torch.cuda.synchronize()
        eager = fastsample.sample(logits, temperature=0.8, top_k=50, top_p=0.9,
                                  seed=list(range(batch)), offset=t)
        assert torch.equal(out.tokens, eager)
        assert bool(out.valid.all())


@pytest.mark.parametrize("host_values, message", [
    (dict(temperature=[0.5, 0.7]), "being captured"),
    (dict(banned_token_ids=[3, 4]), "cannot be captured into a CUDA graph"),
], ids=["per-row values", "id list"])
def test_graph_capture_rejects_host_values(host_values, message):
    logits = random_logits(2, 1000, seed=26, device="cuda")
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(ValueError, match=message):
        with torch.cuda.graph(graph):
            fastsample.sample(logits, seed=1, return_valid=True, **host_values)


def test_list_arguments_reach_the_gpu_without_waiting_for_it():
    """Per-row values and id lists given as Python lists are packed on the host and copied from
    pinned memory: packing them never waits for the GPU's queue (torch's sync debug mode raises
    where a copy would wait), and the device holds the values."""
    from fastsample.kernel.param_table import BY_NAME
    from fastsample.requests import arguments, edit_arguments
    device = torch.device("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        temperature = arguments.param("temperature", [0.5, 0.75], 2, BY_NAME["temperature"].range,
                                      device)
        ids = edit_arguments.id_rows("prompt_token_ids", [[1, 2, 3], [4]], 2, 1000, device,
                                     shared_ok=False)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert temperature.rows.device == device and ids.ids.device == device
    assert temperature.rows.cpu().tolist() == [0.5, 0.75]
    assert ids.ids.cpu().tolist() == [[1, 2, 3], [4, -1, -1]]


def test_torch_compile_step_matches_eager():
    logits = random_logits(4, 32000, seed=27, device="cuda")

    def step(x):
        return fastsample.sample(x * 1.0, seed=3, **HF_DEFAULT)

    compiled = torch.compile(step)
    assert torch.equal(compiled(logits), step(logits))


def test_logits_on_a_second_gpu():
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    logits = random_logits(3, 1000, seed=28)
    want = fastsample.sample(logits, seed=4, **HF_DEFAULT)
    got = fastsample.sample(logits.to("cuda:1"), seed=4, **HF_DEFAULT)
    assert got.device == torch.device("cuda:1")
    assert float((got.cpu() == want).double().mean()) >= 2 / 3
