"""The CUDA block code of csrc/cuda, executed without a GPU: tests/cuda_emulation builds the
real kernel bodies with the real launch dispatch and bindings for the host (each block's 256
threads are host threads, barriers and warp collectives checked, shared memory and workspace
filled with garbage), as the module _cuda_emulated (.ci/build_emulator). Every case runs through
fastsample's own CUDA launch path (workspace sizing, blocks, packed edits) with three resident
blocks, so batches larger than three reuse a block's scratch, and must equal the CPU kernels
bit for bit: tokens, validity, logprobs, processed logits. docs/design.md says what this proves."""
import contextlib
import math
import importlib.util
import os
import random
import subprocess
from pathlib import Path

import pytest
import torch

import fastsample
from fastsample.functional import sampling
from fastsample.kernel import cuda, launch

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "build" / "emulator"
RESIDENT_BLOCKS = 3
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
VOCABS = [1, 2, 31, 64, 65, 257, 1000, 4099, 32000, 128257]


@pytest.fixture(scope="module")
def emulated():
    found = sorted(EMULATOR.glob("_cuda_emulated*.so"))
    if not found:
        why = "no emulator build here (bash .ci/build_emulator makes one)"
        if os.environ.get("FASTSAMPLE_REQUIRE_EMULATOR") == "1":
            pytest.fail(why + "; CI requires it")
        pytest.skip(why)
    spec = importlib.util.spec_from_file_location("_cuda_emulated", found[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.cuda_architectures == "host-emulation"
    return module


class _CountingLaunches:
    """The emulated module, counting its kernel launches (so a case cannot pass by never
    reaching the emulated kernels)."""

    def __init__(self, module):
        self._module = module
        self.launches = 0

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if name in ("cuda_sample", "cuda_process", "cuda_contrastive"):
            def launch(*args, **kwargs):
                self.launches += 1
                return attr(*args, **kwargs)
            return launch
        return attr


@contextlib.contextmanager
def cuda_kernels_on_host(emulated):
    """fastsample's CUDA path with host tensors, launching the emulated kernels."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cuda, "_C", emulated)
        mp.setattr(cuda, "runs_on", lambda device: True)
        mp.setattr(cuda, "resident_blocks", lambda device: RESIDENT_BLOCKS)
        mp.setattr(cuda, "_device_scope", lambda device: contextlib.nullcontext())
        mp.setattr(cuda, "_stream", lambda device: 0)
        mp.setattr(launch, "_on_cpu", lambda logits: False)
        mp.setattr(sampling, "_fast_sample", lambda *args: None)
        yield


def _bits(t):
    if t is None:
        return None
    if t.dtype == torch.float32:
        return t.view(torch.int32)
    return t


def assert_same(cpu, emu, what):
    cpu = cpu if isinstance(cpu, tuple) else (cpu,)
    emu = emu if isinstance(emu, tuple) else (emu,)
    assert len(cpu) == len(emu), what
    for i, (a, b) in enumerate(zip(cpu, emu)):
        if a is None or b is None:
            assert a is None and b is None, f"{what}: output {i}"
            continue
        a, b = _bits(a), _bits(b)
        if not torch.equal(a, b):
            diff = (a != b).reshape(-1).nonzero()[:5].reshape(-1).tolist()
            pytest.fail(f"{what}: output {i} differs at flat positions {diff}: "
                        f"cpu {a.reshape(-1)[diff].tolist()} vs emulated "
                        f"{b.reshape(-1)[diff].tolist()}")


def run_both(emulated, fn, what):
    cpu = fn()
    counting = _CountingLaunches(emulated)
    with cuda_kernels_on_host(counting):
        emu = fn()
    assert counting.launches == 1, what
    assert_same(cpu, emu, what)
    return cpu


# ---- cases -------------------------------------------------------------------------------

def _values(rng, kind, batch, vocab, gen):
    if kind == "ties":
        x = torch.randint(-3, 3, (batch, vocab), generator=gen).float()
    elif kind == "flat":
        x = torch.zeros(batch, vocab)
    elif kind == "peaked":
        x = torch.randn(batch, vocab, generator=gen)
        x[:, rng.randrange(vocab)] = 40.0
    else:
        x = torch.randn(batch, vocab, generator=gen) * rng.choice([0.5, 3.0, 12.0])
    if kind == "nan_inf":
        flat = x.view(-1)
        for value in (float("nan"), float("inf"), float("-inf")):
            idx = torch.randint(0, flat.numel(), (max(1, flat.numel() // 50),), generator=gen)
            flat[idx] = value
        if batch > 1:
            x[0] = float("-inf")  # a row without a valid token
        if batch > 2:
            x[1] = float("nan")
    return x


def _laid_out(x, dtype, layout):
    """x as `dtype` with the given memory layout (same values)."""
    batch, vocab = x.shape
    if layout == "misaligned":  # data pointer one element past an aligned one, odd row stride
        buf = torch.empty(batch, vocab + 1, dtype=dtype)
        buf[:, 1:] = x.to(dtype)
        return buf[:, 1:]
    if layout == "strided":  # odd row stride, aligned start
        buf = torch.empty(batch, 2 * vocab + 3, dtype=dtype)
        buf[:, :vocab] = x.to(dtype)
        return buf[:, :vocab]
    if layout == "zero_stride":  # one row for every row (an expanded tensor)
        return x[:1].to(dtype).expand(batch, vocab)
    return x.to(dtype).contiguous()


def _per_row(rng, batch, choices, dtype):
    if rng.random() < 0.5:
        return rng.choice(choices)
    return torch.tensor([rng.choice(choices) for _ in range(batch)], dtype=dtype)


def _ids(rng, vocab, n):
    return [rng.randrange(vocab) for _ in range(n)]


def _first_row(ids):
    if ids is None:
        return []
    row = ids[0].tolist() if isinstance(ids[0], torch.Tensor) else ids[0]
    return [t for t in row if t >= 0]


def _edits(rng, batch, vocab):
    kw = {}
    picks = rng.sample(["penalties", "counts", "bias", "allowed", "banned", "bitmask",
                        "min_tokens"], rng.randint(1, 4))
    if "penalties" in picks:
        kw["repetition_penalty"] = _per_row(rng, batch, [1.0, 1.3, 0.8], torch.float32)
        kw["prompt_token_ids"] = [_ids(rng, vocab, rng.randint(0, 12)) for _ in range(batch)]
        kw["output_token_ids"] = [_ids(rng, vocab, rng.randint(0, 12)) for _ in range(batch)]
        kw["frequency_penalty"] = _per_row(rng, batch, [0.0, 0.5, -0.3], torch.float32)
        kw["presence_penalty"] = rng.choice([0.0, 0.7])
    elif "counts" in picks:
        ids = [sorted(set(_ids(rng, vocab, 6))) for _ in range(batch)]
        width = max(len(r) for r in ids)
        kw["output_token_ids"] = torch.tensor([r + [-1] * (width - len(r)) for r in ids])
        kw["output_token_counts"] = torch.randint(1, 5, (batch, width), dtype=torch.int32)
        kw["frequency_penalty"] = 0.4
    if "bias" in picks:
        kw["logit_bias"] = [{t: rng.uniform(-5, 5) for t in _ids(rng, vocab, 4)}
                            for _ in range(batch)]
    if "allowed" in picks:
        kw["allowed_token_ids"] = [_ids(rng, vocab, rng.randint(1, 20)) for _ in range(batch)]
    if "banned" in picks:
        kw["banned_token_ids"] = _ids(rng, vocab, rng.randint(1, 20))
    if "bitmask" in picks:
        words = (vocab + 31) // 32
        mask = torch.randint(-2**31, 2**31 - 1, (batch, words), dtype=torch.int32)
        mask[:, 0] |= 1  # token 0 stays allowed, so most rows keep a valid token
        mask[0] = -1  # a free row beside grammar rows: its mask is dropped (row_edits.h)
        kw["token_bitmask"] = mask
    if "min_tokens" in picks:
        kw["min_tokens"] = _per_row(rng, batch, [0, 3], torch.int64)
        kw["stop_token_ids"] = _ids(rng, vocab, 3)
        kw["eos_token_id"] = rng.randrange(vocab)
    return kw


def _filters(rng, batch):
    return dict(temperature=_per_row(rng, batch, [0.0, 0.7, 1.0, 1.5], torch.float32),
                top_k=_per_row(rng, batch, [0, 1, 5, 50], torch.int64),
                top_p=_per_row(rng, batch, [1.0, 0.9, 0.5], torch.float64),
                min_p=_per_row(rng, batch, [0.0, 0.05], torch.float32))


def make_case(index, vocab=None, dtype=None):
    rng = random.Random(1000 + index)
    gen = torch.Generator().manual_seed(index)
    vocab = vocab or rng.choice(VOCABS)
    dtype = dtype or DTYPES[index % 3]
    batch = rng.choice([1, 2, 5, 8])
    kind = rng.choice(["normal", "normal", "ties", "flat", "peaked", "nan_inf"])
    layout = rng.choice(["contiguous", "contiguous", "misaligned", "strided", "zero_stride"])
    logits = _laid_out(_values(rng, kind, batch, vocab, gen), dtype, layout)
    kw = _filters(rng, batch)
    if rng.random() < 0.6:
        kw.update(_edits(rng, batch, vocab))
    if rng.random() < 0.3:
        kw["top_n_sigma"] = _per_row(rng, batch, [0.0, 0.5, 1.0, 2.5], torch.float32)
    if rng.random() < 0.3:
        kw["xtc_threshold"] = _per_row(rng, batch, [0.0, 0.02, 0.1, 0.3], torch.float32)
        kw["xtc_probability"] = _per_row(rng, batch, [0.0, 0.5, 1.0], torch.float32)
    if rng.random() < 0.3:
        kw["typical_p"] = _per_row(rng, batch, [1.0, 0.9, 0.5, 0.2], torch.float64)
        kw["epsilon_cutoff"] = _per_row(rng, batch, [0.0, 1e-4, 0.01], torch.float32)
        kw["eta_cutoff"] = _per_row(rng, batch, [0.0, 1e-3], torch.float32)
    if rng.random() < 0.3 and "output_token_counts" not in kw:
        kw["no_repeat_ngram_size"] = _per_row(rng, batch, [0, 1, 2, 3], torch.int64)
        if "prompt_token_ids" not in kw:  # a history of three tokens repeats its n-grams
            alphabet = _ids(rng, vocab, 3)
            for name in ("prompt_token_ids", "output_token_ids"):
                kw[name] = [[rng.choice(alphabet) for _ in range(rng.randint(0, 10))]
                            for _ in range(batch)]
    if rng.random() < 0.3 and "output_token_counts" not in kw:  # over the history's tokens
        history = _first_row(kw.get("prompt_token_ids")) + _first_row(kw.get("output_token_ids"))
        alphabet = sorted(set(history))[:4] or _ids(rng, vocab, 3)
        kw["sequence_bias"] = {tuple(rng.choice(alphabet) for _ in range(rng.randint(1, 3))):
                               rng.choice([-math.inf, -2.0, 0.5, 3.0]) for _ in range(6)}
    if rng.random() < 0.3 and "output_token_counts" not in kw:  # long repeats of few tokens
        kw["dry_multiplier"] = _per_row(rng, batch, [0.0, 0.5, 1.0, 3.0], torch.float32)
        kw["dry_base"] = _per_row(rng, batch, [1.0, 1.75, 3.0], torch.float32)
        kw["dry_allowed_length"] = _per_row(rng, batch, [0, 1, 2, 4], torch.int64)
        kw["dry_penalty_last_n"] = _per_row(rng, batch, [-1, 0, 3, 40], torch.int64)
        if "prompt_token_ids" not in kw:
            alphabet = _ids(rng, vocab, 3)
            for name in ("prompt_token_ids", "output_token_ids"):
                kw[name] = [[rng.choice(alphabet) for _ in range(rng.randint(0, 30))]
                            for _ in range(batch)]
        history = _first_row(kw.get("prompt_token_ids")) + _first_row(kw.get("output_token_ids"))
        alphabet = sorted(set(history))[:4] or _ids(rng, vocab, 3)
        kw["dry_sequence_breakers"] = [[rng.choice(alphabet) for _ in range(rng.randint(1, 2))]
                                       for _ in range(rng.randint(0, 2))] or None
    if rng.random() < 0.2:
        kw["begin_suppress_tokens"] = _ids(rng, vocab, 3)
        kw["num_generated"] = _per_row(rng, batch, [0, 1], torch.int64)
    desc = f"case {index}: B={batch} V={vocab} {dtype} {kind} {layout} {sorted(kw)}"
    return rng, logits, kw, desc


SAMPLE_CASES = 90
PROCESS_CASES = 40


@pytest.mark.parametrize("index", range(SAMPLE_CASES))
def test_sample_equals_cpu_kernels(emulated, index):
    rng, logits, kw, desc = make_case(index)
    batch = logits.shape[0]
    seed = torch.tensor([rng.randrange(2**62) for _ in range(batch)])
    offset = rng.randrange(1000)
    lp = {}
    if rng.random() < 0.5:
        lp = dict(logprobs=rng.choice([0, 3, 20]), logprobs_mode=rng.choice(["raw", "processed"]))
    run_both(emulated, lambda: fastsample.sample(logits, seed=seed, offset=offset,
                                                 return_valid=True, **kw, **lp),
             desc + f" {lp}")


@pytest.mark.parametrize("index", range(PROCESS_CASES))
def test_process_logits_equals_cpu_kernels(emulated, index):
    _, logits, kw, desc = make_case(10_000 + index)
    if "xtc_probability" in kw:  # XTC's coin: seeded, so both runs toss the same one
        kw["seed"] = list(range(1, logits.shape[0] + 1))
    run_both(emulated, lambda: fastsample.process_logits(logits, **kw), desc)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prompt_logprobs_equals_cpu_kernels(emulated, dtype):
    gen = torch.Generator().manual_seed(7)
    logits = (torch.randn(7, 4099, generator=gen) * 4).to(dtype)
    targets = torch.randint(0, 4099, (7,), generator=gen)
    out = run_both(emulated, lambda: tuple(fastsample.prompt_logprobs(logits, targets, n=5)),
                   f"prompt_logprobs {dtype}")
    assert torch.isfinite(out[0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_contrastive_scores_equal_cpu_kernels(emulated, dtype):
    """Contrastive search's scoring: one warp per position, lanes and butterfly shuffles, keys
    maxed in shared memory; more rows than resident blocks (blocks reuse their shared
    storage), hidden sizes around the 32 lanes, strided context, masked positions."""
    g = torch.Generator().manual_seed(7)
    for B, L, k, D in ((7, 9, 5, 31), (4, 70, 64, 96), (5, 3, 1, 1), (2, 33, 8, 257)):
        wide = torch.randn(B, L + 2, D + 3, generator=g).to(dtype)
        context = wide[:, 1:1 + L, 2:2 + D]
        candidates = torch.randn(B, k, D, generator=g).to(dtype)
        mask = (torch.rand(B, L, generator=g) < 0.7).to(torch.int64)
        probs = torch.softmax(torch.randn(B, k, generator=g), -1)
        probs[0, 0] = 0.0
        alpha = torch.rand(B, generator=g, dtype=torch.float64)
        run_both(emulated, lambda: fastsample.contrastive_scores(context, mask, candidates,
                                                                 probs, alpha),
                 f"contrastive B={B} L={L} k={k} D={D} {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_verify_equals_cpu_kernels(emulated, dtype):
    """Speculative verification: chains with and without proposals, a tree whose nodes judge
    several children (residual passes over the row and over a top-k candidate list), greedy
    and sampled rows mixed, stages 1-3 from each node's path, logprobs per node."""
    g = torch.Generator().manual_seed(11)
    for B, S, V, tree in ((5, 3, 3000, False), (4, 6, 9000, True), (3, 4, 777, True)):
        target = (torch.randn(B, S + 1, V, generator=g) * 3).to(dtype)
        q = torch.softmax(torch.randn(B, S, V, generator=g) * 3, dim=2)
        drafts = torch.multinomial(q.reshape(-1, V), 1, generator=g).reshape(B, S)
        drafts[:, 0] = target[:, 0].float().argmax(1)
        parents = torch.tensor([-1, -1, -1, 0, 0, 1][:S]).expand(B, -1) if tree else None
        for kw in (dict(draft_probs=q, top_k=[0, 7, 50, 0, 2][:B],
                        temperature=[1.0, 0.0, 0.8, 1.2, 1.0][:B]),
                   dict(repetition_penalty=1.3, output_token_ids=[[1, 2]] * B, top_p=0.9,
                        logprobs=3, logprobs_mode="processed", min_tokens=2, eos_token_id=0)):
            run_both(emulated, lambda: tuple(fastsample.verify(
                target, drafts, parents=parents, seed=list(range(B)), offset=7, **kw)),
                     f"verify B={B} S={S} V={V} tree={tree} {sorted(kw)} {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_million_token_vocabulary(emulated, dtype):
    """V = 2^20: many groups per warp, histogram passes over long segments."""
    _, logits, kw, desc = make_case(20_000, vocab=2**20, dtype=dtype)
    run_both(emulated, lambda: fastsample.sample(logits, seed=5, return_valid=True, top_p=0.9,
                                                 logprobs=5, logprobs_mode="processed"),
             desc)


def test_every_edit_at_once_across_reused_blocks(emulated):
    """B = 8 rows on 3 blocks, each stage 1-3 input per row: a block's marks and patches must be
    clean again for its next row."""
    rng = random.Random(3)
    batch, vocab = 8, 5000
    logits = torch.randn(batch, vocab, generator=torch.Generator().manual_seed(3)) * 3
    kw = dict(repetition_penalty=torch.tensor([1.0, 1.2, 1.5, 0.9, 1.1, 1.3, 1.0, 2.0]),
              prompt_token_ids=[_ids(rng, vocab, 30) for _ in range(batch)],
              output_token_ids=[_ids(rng, vocab, 30) for _ in range(batch)],
              frequency_penalty=0.3, presence_penalty=0.2,
              logit_bias=[{t: 2.0 for t in _ids(rng, vocab, 5)} for _ in range(batch)],
              banned_token_ids=[_ids(rng, vocab, 10) for _ in range(batch)],
              min_tokens=40, stop_token_ids=[1, 2, 3], eos_token_id=0)
    for mode in ("raw", "processed"):
        run_both(emulated, lambda: fastsample.sample(logits, seed=11, return_valid=True,
                                                     logprobs=4, logprobs_mode=mode, **kw),
                 f"every edit, {mode}")
    run_both(emulated, lambda: fastsample.process_logits(logits, top_k=50, **kw),
             "every edit, process_logits")


@pytest.mark.parametrize("build", ["emulator", "emulator-tsan"])
def test_driver_checks_and_cases(emulated, build):
    """cuda_emulation_driver: the emulation's checks fail a divergent barrier, an early return
    and a partial warp mask; a few batches with every stage equal the baseline CPU kernels. The
    emulator-tsan build runs it under ThreadSanitizer: a data race between threads of a block
    (a missing barrier) is reported and fails the run."""
    driver = ROOT / "build" / build / "cuda_emulation_driver"
    if not driver.exists():
        pytest.fail(f"{driver} is missing (bash .ci/build_emulator builds it)")
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1 exitcode=66")
    run = subprocess.run([str(driver)], capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ThreadSanitizer" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "0 failure(s)" and sum(l.startswith("ok ") for l in lines) == 9, run.stdout


def test_selftest_cuda_checks_pass_on_the_emulator(emulated):
    """The selftest's CUDA checks (run on a GPU by `python -m fastsample selftest` and
    .ci/gpu-check) pass with the emulated kernels; graph replay needs a GPU and is left out."""
    from fastsample.reference import selftest_cuda
    counting = _CountingLaunches(emulated)

    def on_emulated_device(device, fn, *args, **kw):
        with cuda_kernels_on_host(counting):
            return fn(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(selftest_cuda, "_on_device", on_emulated_device)
        mp.setattr(cuda, "resident_blocks", lambda device: RESIDENT_BLOCKS)
        results = selftest_cuda.run_checks(torch.device("cpu"), small=True)
    assert [name for name, _ in results] == [name for name, _ in selftest_cuda.CHECKS]
    assert all(problem == "" for _, problem in results), results
    assert counting.launches > 40

