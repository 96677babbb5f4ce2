"""The CUDA architecture choice of the build (csrc/cuda/architectures.cmake), run by CMake's
script mode against stand-in nvcc and nvidia-smi programs: a default list must never name an
architecture the installed nvcc cannot build (sm_100/sm_120 need nvcc >= 12.8), and AUTO builds
for the visible GPUs only."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CMAKE = shutil.which("cmake")
pytestmark = pytest.mark.skipif(CMAKE is None, reason="cmake is not installed")


def _program(path: Path, text: str, rc: int = 0) -> None:
    path.write_text(f"#!/bin/sh\ncat <<'OUT'\n{text}\nOUT\nexit {rc}\n")
    path.chmod(0o755)


def _archs(tmp_path, nvcc_release=None, gpus=None):
    """(visible, default) lists from the build's functions with these stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    nvcc = bin_dir / "nvcc"
    _program(nvcc, "nvcc: NVIDIA (R) Cuda compiler driver\n"
                   f"Cuda compilation tools, release {nvcc_release}, V{nvcc_release}.99")
    if gpus is not None:
        _program(bin_dir / "nvidia-smi", "\n".join(gpus))
    script = tmp_path / "probe.cmake"
    script.write_text(f'include("{ROOT}/csrc/cuda/architectures.cmake")\n'
                      "fastsample_visible_archs(visible)\n"
                      f'fastsample_default_archs("{nvcc}" default)\n'
                      'message(NOTICE "visible=${visible}")\n'
                      'message(NOTICE "default=${default}")\n')
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    run = subprocess.run([CMAKE, "-P", str(script)], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    found = dict(line.split("=", 1) for line in run.stderr.splitlines() if "=" in line)
    return found["visible"], found["default"]


@pytest.mark.parametrize("release, expected", [
    ("11.7", "80-real;86"),
    ("12.1", "80-real;86-real;89-real;90"),
    ("12.6", "80-real;86-real;89-real;90"),
    ("12.8", "80-real;86-real;89-real;90-real;100-real;120"),
    ("13.0", "80-real;86-real;89-real;90-real;100-real;120"),
])
def test_default_architectures_follow_the_compiler(tmp_path, release, expected):
    assert _archs(tmp_path, release)[1] == expected


def test_visible_gpus_choose_the_architectures(tmp_path):
    (tmp_path / "gpus").mkdir()
    (tmp_path / "none").mkdir()
    assert _archs(tmp_path / "gpus", "12.4", gpus=["9.0", "8.0", "9.0"])[0] == "90;80"
    assert _archs(tmp_path / "none", "12.4", gpus=None)[0] == ""
