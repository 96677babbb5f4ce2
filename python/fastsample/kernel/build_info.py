"""What this install was built with, for bug reports and for choosing a backend."""
from __future__ import annotations

from typing import Any, Dict, Optional

from .. import _C
from . import cuda


def build_info() -> Dict[str, Any]:
    """Returns version, compiled backends, CUDA architectures, the CPU SIMD level in use and the
    CPU thread count.

    `backends` lists the device types with compiled sampling kernels; other torch devices run
    the pure-torch reference. `cuda_enabled` says whether the build found nvcc and compiled the
    CUDA kernels (FASTSAMPLE_CUDA), `cuda_not_built` why not (None when it did);
    `cuda_devices` how many GPUs they can use here (0 without a
    driver or GPU: CUDA tensors cannot exist then either); `cuda_driver` / `cuda_runtime` the
    CUDA versions of the driver and of the runtime the kernels were built with ("13.0"; None
    without a driver or without CUDA kernels). `cpu_edited_rows` is how CPU rows with
    penalties, bias or masks are read: "dense" (written out as keys once) or "patched" (through
    the patch list, as the CUDA kernels do; FASTSAMPLE_CPU_EDITED_ROWS=patched, for tests).
    `cpu_threading` is where the CPU kernels' threads come from: "openmp <library>" (the
    OpenMP runtime torch loaded: its threads run fastsample's parallel work) or "pool"
    (fastsample's own threads: no OpenMP runtime loaded, or FASTSAMPLE_THREADING=pool).
    """
    archs = [a for a in str(_C.cuda_architectures).split(",") if a]
    return {
        "version": _C.version,
        "backends": ["cpu", "cuda"] if cuda.COMPILED else ["cpu"],
        "cuda_enabled": bool(_C.cuda_compiled),
        "cuda_not_built": getattr(_C, "cuda_not_built", None),
        "cuda_architectures": archs,
        "cuda_devices": cuda.device_count(),
        "cuda_driver": cuda.runtime_status().driver,
        "cuda_runtime": cuda.runtime_status().runtime,
        "simd": _C.simd_level(),
        "cpu_edited_rows": _C.cpu_edited_rows(),
        "num_threads": _C.get_num_threads(),
        "cpu_threading": _C.cpu_threading(),
    }


def set_num_threads(n: Optional[int]) -> None:
    """Sets the number of CPU threads the kernels use: an int >= 1, or None to follow torch
    again. By default (and after None) they use FASTSAMPLE_NUM_THREADS when it is set, else
    torch.get_num_threads(), on torch's own OpenMP threads (build_info()["cpu_threading"])."""
    if n is None:
        _C.set_num_threads(0)
        return
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"num_threads must be an int >= 1 or None, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"num_threads={n} is out of range; allowed: n >= 1, or None (follow "
                         "torch.get_num_threads())")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    """The number of CPU threads the kernels use (for a call from this thread)."""
    return int(_C.get_num_threads())
