"""The CPU extension built with AddressSanitizer + UndefinedBehaviorSanitizer (.ci/build_sanitized)
runs the keep-set, penalty, logprob, fuzz, DRY and contrastive-scoring suites, both ways of reading an edited row: an
out-of-bounds access, a use after free or undefined behaviour aborts the run and fails here.
docs/reliability.md lists what runs."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastsample

ROOT = Path(__file__).resolve().parent.parent
SANITIZED = ROOT / "build" / "sanitized"
SUITES = ["test_keep_sets.py", "test_penalties.py", "test_logprobs.py", "test_fuzz.py",
          "test_fuzz_regressions.py", "test_dry.py", "test_contrastive_scores.py",
          "test_verify.py"]
EDITED_ROW_SUITES = ["test_penalties.py", "test_logprobs.py", "test_dry.py", "test_verify.py"]


def _sanitized_module():
    found = sorted(SANITIZED.glob("_C*.so"))
    if found:
        return found[0]
    why = "no sanitized build here (bash .ci/build_sanitized makes one)"
    if os.environ.get("FASTSAMPLE_REQUIRE_SANITIZED") == "1":
        pytest.fail(why + "; CI requires it")
    pytest.skip(why)


def _runtime_libraries():
    libs = []
    for name in ("libasan.so", "libubsan.so"):
        path = subprocess.run(["gcc", "-print-file-name=" + name], capture_output=True,
                              text=True).stdout.strip()
        if not os.path.isabs(path):
            pytest.fail(f"the sanitizer runtime {name} is not installed (gcc has none)")
        libs.append(path)
    return " ".join(libs)


@pytest.fixture(scope="module")
def sanitized_package(tmp_path_factory):
    """The installed Python layer beside the sanitized _C, as a package on its own path."""
    module = _sanitized_module()
    root = tmp_path_factory.mktemp("sanitized")
    shutil.copytree(Path(fastsample.__file__).parent, root / "fastsample",
                    ignore=shutil.ignore_patterns("_C*.so", "__pycache__"))
    shutil.copy(module, root / "fastsample" / module.name)
    return root


@pytest.mark.parametrize("edited_rows, suites", [("dense", SUITES),
                                                 ("patched", EDITED_ROW_SUITES)])
def test_suites_clean_under_asan_and_ubsan(sanitized_package, edited_rows, suites):
    env = dict(os.environ, PYTHONPATH=str(sanitized_package),
               LD_PRELOAD=_runtime_libraries(),
               # Python and torch leak by design at exit; reports would be noise.
               ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
               FASTSAMPLE_CPU_EDITED_ROWS=edited_rows)
    check = ("import fastsample, sys; "
             f"assert fastsample.__file__.startswith({str(sanitized_package)!r}); "
             f"assert fastsample.build_info()['cpu_edited_rows'] == {edited_rows!r}")
    subprocess.run([sys.executable, "-c", check], env=env, check=True)
    # -s: a sanitizer report goes to the process's stderr; pytest's capture would drop it
    # with the process.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-x", "-p", "no:cacheprovider",
         *[str(ROOT / "tests" / s) for s in suites]],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    tail = run.stdout[-3000:] + run.stderr[-6000:]
    assert run.returncode == 0, tail
    assert "ERROR: AddressSanitizer" not in tail and "runtime error:" not in tail, tail
