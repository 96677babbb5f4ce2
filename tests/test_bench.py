"""`python -m fastsample bench`: it runs, reports every peer it can run, writes JSON and plots,
and its peers sample what they claim to (the torch sort-based peer against the reference)."""
import json

import pytest
import torch

import fastsample
from fastsample.__main__ import main
from fastsample.bench import report
from fastsample.bench.peers import torch_sort_sample
from fastsample.bench.timing import Timing, measure
from helpers import chi_square, chi_square_bound
from tiny_models import llama


def test_quick_run_reports_every_peer_and_writes_json_and_plots(tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--device", "cpu", "--batch", "1,3", "--vocab", "300,700",
                 "--rounds", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    data = json.loads((out / "results.json").read_text())
    peers = {r["peer"] for r in data["results"]}
    assert {"fastsample", "torch-sort", "transformers", "floor-read", "floor-exp"} <= peers
    assert len(data["results"]) == 2 * 2 * 2 * len(peers)  # cases x batches x vocabs x peers
    assert all(r["median_ms"] > 0 and len(r["rounds_ms"]) == 2 for r in data["results"])
    assert "not measured: flashinfer: FlashInfer runs on CUDA GPUs only" in printed.out
    # One headline per case, at its largest size, and the progress on stderr.
    assert sum(line.startswith(("hf-default: fastsample is", "top-p-only: fastsample is"))
               for line in printed.out.splitlines()) == 2
    assert "B=3, V=700 (float32, cpu)" in printed.out
    assert "[##############################] " in printed.err
    pytest.importorskip("matplotlib")
    assert sorted(p.name for p in out.glob("*.png")) == ["hf-default-float32.png",
                                                         "top-p-only-float32.png"]
    assert len(list(out.glob("*.svg"))) == 2


@pytest.mark.parametrize("argv,message", [
    (["--batch", "0"], "expected integers >= 1"),
    (["--case", "nope"], "unknown nope; choose from hf-default, top-p-only"),
    (["--dtype", "float64"], "unknown float64"),
    (["--peers", "vllm"], "unknown vllm"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", *argv])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_model_refuses_the_kernel_benchmarks_options(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path), "--batch", "4", "--out",
                 str(tmp_path / "o")]) == 2
    assert "takes one --dtype and one --case, not --batch" in capsys.readouterr().err


def test_out_must_be_a_folder_before_anything_runs(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("")
    assert main(["bench", "--out", str(target)]) == 2
    assert "is a file; name a folder" in capsys.readouterr().err


def test_a_cuda_run_without_a_gpu_says_why(capsys):
    if torch.cuda.is_available() and fastsample.build_info()["cuda_enabled"]:
        pytest.skip("this machine can run the CUDA benchmark")
    assert main(["bench", "--device", "cuda", "--no-plots"]) == 2
    assert "--device cuda needs a GPU" in capsys.readouterr().err


def test_the_table_and_headlines_state_the_ratios():
    def r(peer, ms, noisy=False):
        return dict(case="hf-default", dtype="float32", batch=64, vocab=128256, device="cpu",
                    peer=peer, median_ms=ms, spread=0.5 if noisy else 0.01, noisy=noisy,
                    rounds_ms=[ms])
    results = [r("fastsample", 2.0), r("transformers", 10.0), r("floor-read", 0.5, noisy=True)]
    text = report.table(results, ["fastsample", "transformers", "floor-read"])
    row = text.splitlines()[1].split()
    assert row == ["hf-default", "float32", "64", "128256", "2.000", "10.000", "0.500~",
                   "5.00x", "4.00"]
    assert report.headlines(results, "cpu") == [
        "hf-default: fastsample is 5.0x faster than transformers' processors at B=64, V=128256 "
        "(float32, cpu); its time is 4.0x the one-read floor (torch.amax) [noisy: floor-read]."]


def test_timing_keeps_the_median_round_and_its_spread():
    t = Timing(2.0, [1.0, 2.0, 3.0])
    assert t.spread == 1.0 and t.noisy
    calls = []
    got = measure(lambda: calls.append(1), "cpu", rounds=3, min_round_s=0.0)
    assert len(got.rounds_s) == 3 and got.median_s > 0 and len(calls) == 2 + 1 + 3


def test_torch_sort_peer_samples_the_reference_distribution():
    """Its keep-set for top-k (and for top-p) is the reference's, and its draws follow the
    renormalized probabilities: chi-square at p = 0.001 over 20,000 draws (fixed seed)."""
    torch.manual_seed(0)
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(1)) * 2
    for params in (dict(temperature=0.8, top_k=7), dict(temperature=1.2, top_p=0.6),
                   dict(temperature=0.7, min_p=0.1)):
        probs = torch.softmax(fastsample.reference.process_logits(logits, **params), -1)[0]
        rows = logits.expand(20000, -1).contiguous()
        counts = torch.bincount(torch_sort_sample(rows, **params), minlength=40).double()
        kept = int((probs > 0).sum())
        assert chi_square(counts, probs.double()) < chi_square_bound(kept - 1)


def test_model_option_reports_tokens_per_second(tmp_path, capsys):
    path = tmp_path / "tiny-llama"
    llama(vocab=64).save_pretrained(path)
    code = main(["bench", "--model", str(path), "--prompts", "2", "--new-tokens", "3",
                 "--rounds", "1", "--out", str(tmp_path / "out")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "fastsample.generate decodes" in printed and printed.count("tokens/s") == 2
    data = json.loads((tmp_path / "out" / "decode-loop.json").read_text())
    assert {r["loop"] for r in data["results"]} == {"fastsample", "transformers"}


def test_llama_cpp_peer_samples_inside_its_keep_set():
    pytest.importorskip("llama_cpp")
    from fastsample.bench.peers import make
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(2))
    tokens = make("llama.cpp", dict(temperature=0.7, top_k=5), logits)()
    top = logits.topk(5).indices
    assert all(t in top[i].tolist() for i, t in enumerate(tokens))
