"""What this install was built with, for bug reports and for choosing a backend."""
from __future__ import annotations

from typing import Any, Dict

from . import _C, _cuda


def build_info() -> Dict[str, Any]:
    """Returns version, compiled backends, CUDA architectures, the CPU SIMD level in use and the
    CPU thread count.

    `backends` lists the device types with compiled sampling kernels; other torch devices run
    the pure-torch reference. `cuda_enabled` says whether the build found nvcc and compiled the
    CUDA kernels (FASTSAMPLE_CUDA); `cuda_devices` how many GPUs they can use here (0 without a
    driver or GPU: CUDA tensors cannot exist then either). `cpu_edited_rows` is how CPU rows with
    penalties, bias or masks are read: "dense" (written out as keys once) or "patched" (through
    the patch list, as the CUDA kernels do; FASTSAMPLE_CPU_EDITED_ROWS=patched, for tests).
    """
    archs = [a for a in str(_C.cuda_architectures).split(",") if a]
    return {
        "version": _C.version,
        "backends": ["cpu", "cuda"] if _cuda.COMPILED else ["cpu"],
        "cuda_enabled": bool(_C.cuda_compiled),
        "cuda_architectures": archs,
        "cuda_devices": _cuda.device_count(),
        "simd": _C.simd_level(),
        "cpu_edited_rows": _C.cpu_edited_rows(),
        "num_threads": _C.get_num_threads(),
    }


def set_num_threads(n: int) -> None:
    """Sets the number of CPU threads the kernels use (default: all cores, or the
    FASTSAMPLE_NUM_THREADS environment variable). n must be an int >= 1."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"num_threads must be an int >= 1, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"num_threads={n} is out of range; allowed: n >= 1")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """The number of CPU threads the kernels use."""
    return int(_C.get_num_threads())
