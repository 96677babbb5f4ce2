"""`python -m fastsample selftest`: passes on a good install, exits 1 when a backend is wrong."""
import subprocess
import sys

import torch

import fastsample

from fastsample.reference import selftest


def test_selftest_passes_here():
    proc = subprocess.run([sys.executable, "-m", "fastsample", "selftest"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "selftest: all passed" in proc.stdout
    assert " pass" in proc.stdout and "FAIL" not in proc.stdout


def test_selftest_reports_a_broken_backend(monkeypatch):
    real = selftest.process_logits

    def off_by_one(x, **params):
        out = real(x, **params)
        return torch.where(out > -float("inf"), out + 1.0, out)

    monkeypatch.setattr(selftest, "process_logits", off_by_one)
    monkeypatch.setattr(selftest, "VOCABS", (1000,))
    monkeypatch.setattr(selftest, "DTYPES", {"f32": torch.float32})
    lines = []
    assert selftest.run(lines.append) == 1
    assert any("FAIL: keep-set: kept values differ" in line for line in lines)
    assert lines[-1].startswith("selftest:") and "FAILED" in lines[-1]


def test_cli_usage():
    proc = subprocess.run([sys.executable, "-m", "fastsample"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_cli_help_lists_the_commands():
    proc = subprocess.run([sys.executable, "-m", "fastsample", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
    for command in ("info", "selftest"):
        assert f"    {command}" in proc.stdout


def test_info_says_why_cuda_was_not_built():
    info = fastsample.build_info()
    assert (info["cuda_not_built"] is None) == info["cuda_enabled"]
    if not info["cuda_enabled"]:
        assert info["cuda_not_built"]  # FASTSAMPLE_CUDA=OFF, no nvcc, or no GPU at build time


def test_selftest_shows_progress():
    lines = []
    selftest.run(print_fn=lines.append)
    counters = [line.rsplit("[", 1)[1].rstrip("]") for line in lines if line.startswith("cpu ")]
    total = len(counters)
    assert total > 100 and counters == [f"{i}/{total}" for i in range(1, total + 1)]
