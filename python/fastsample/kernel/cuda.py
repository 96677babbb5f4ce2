"""Launching the CUDA kernels: the logits' device, its current stream and a workspace from
torch's caching allocator. Nothing here waits for the GPU, so a decode step that calls
fastsample.sample can be captured in a CUDA graph."""
from __future__ import annotations

import contextlib
import contextvars

import functools
import warnings
from typing import Dict, Iterator, NamedTuple, Optional

import torch

from .. import _C

COMPILED = bool(_C.cuda_compiled)
REBUILD = ("rebuild fastsample on a machine with nvcc: FASTSAMPLE_CUDA=ON "
           "FASTSAMPLE_CUDA_ARCHS=<your GPU, e.g. 90> pip install --no-build-isolation .")

# Resident blocks per device (SMs x blocks per SM, from the occupancy API): the grid never has
# more blocks than run at once, since each block loops over rows and owns a scratch share.
_resident_blocks: Dict[int, int] = {}


class RuntimeStatus(NamedTuple):
    """The CUDA driver's and the (statically linked) runtime's versions as "major.minor" (None:
    no driver / no CUDA kernels), the GPUs the runtime sees, and its error when it sees none."""

    driver: Optional[str]
    runtime: Optional[str]
    devices: int
    error: Optional[str]


def _version(v: int) -> Optional[str]:
    return f"{v // 1000}.{v % 1000 // 10}" if v > 0 else None


@functools.lru_cache(maxsize=1)
def runtime_status() -> RuntimeStatus:
    if not COMPILED:
        return RuntimeStatus(None, None, 0, None)
    driver, runtime, devices, error = _C.cuda_runtime_status()
    return RuntimeStatus(_version(driver), _version(runtime), int(devices), error or None)


def unusable_reason() -> Optional[str]:
    """Why the compiled CUDA kernels cannot run where torch sees a GPU, or None."""
    st = runtime_status()
    if st.devices > 0 or not torch.cuda.is_available():
        return None
    if st.driver is not None and st.runtime is not None and \
            tuple(map(int, st.driver.split("."))) < tuple(map(int, st.runtime.split("."))):
        return (f"the CUDA driver supports CUDA {st.driver}, older than the CUDA {st.runtime} "
                f"runtime fastsample was built with (CUDA 13 needs driver >= 580): install a "
                f"newer driver, or rebuild with the CUDA toolkit your driver supports "
                f"(FASTSAMPLE_CUDA=ON pip install --no-build-isolation .)")
    return f"the CUDA runtime sees no GPU ({st.error}); torch sees {torch.cuda.device_count()}"


@functools.lru_cache(maxsize=1)
def _warn_reference_on_cuda() -> None:
    warnings.warn("fastsample was built without CUDA kernels: CUDA tensors run the pure-torch "
                  "reference, hundreds of times slower; " + REBUILD, RuntimeWarning,
                  stacklevel=4)


def runs_on(device: torch.device) -> bool:
    """True when tensors on `device` are sampled by the compiled CUDA kernels. Warns once when
    CUDA tensors meet a build without them; raises when the kernels cannot run here."""
    if device.type != "cuda":
        return False
    if not COMPILED:
        _warn_reference_on_cuda()
        return False
    reason = unusable_reason()
    if reason is not None:
        raise RuntimeError(f"fastsample: {reason}")
    return True


def check_sampler_device(device: torch.device) -> None:
    """A Sampler on a CUDA device needs a GPU and the CUDA kernels (no reference fallback)."""
    if device.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: torch sees no GPU here "
                         "(torch.cuda.is_available() is False); use device='cpu'")
    if not COMPILED:
        raise ValueError(f"device={str(device)!r}: fastsample was built without CUDA kernels; "
                         + REBUILD)
    reason = unusable_reason()
    if reason is not None:
        raise ValueError(f"device={str(device)!r}: {reason}")


def capturing() -> bool:
    """True while the current CUDA stream is being captured into a graph (no syncs allowed)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


_TRUSTED = contextvars.ContextVar("fastsample_trusts_device_values", default=False)


@contextlib.contextmanager
def trusting_device_values() -> Iterator[None]:
    """Inside, fastsample reads no GPU-resident argument back to the host, as during graph
    capture: per-row parameters on the GPU are not range-checked (the kernels normalize
    out-of-range values, row_params.h), GPU token-id tensors are not checked, unseeded rows
    always draw their seeds, and a row without a valid token is left to return_valid. For
    callers that validated their requests already and must not wait for the GPU (a serving
    engine's sampler step). Host-resident arguments are checked as ever."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def device_values_trusted() -> bool:
    """True while GPU-resident arguments must not be read back: during graph capture and inside
    trusting_device_values()."""
    return _TRUSTED.get() or capturing()


def host_to_device(t: torch.Tensor, device: torch.device, pin: bool = True) -> torch.Tensor:
    """`t` on `device`. A CPU tensor bound for a GPU (argument lists the host just packed) is
    copied from pinned memory without the host waiting: a copy from pageable memory would wait
    for everything queued on the stream, the model's forward pass included, which stalls a
    decode loop or an engine step that runs ahead of the GPU. pin=False, or memory that cannot
    be pinned: a copy from pageable memory. During graph capture a host copy would be replayed
    with stale values: refused."""
    device = torch.device(device)
    if device.type != "cuda" or t.device.type != "cpu":
        return t.to(device)
    if capturing():
        raise ValueError("values given as Python lists or CPU tensors cannot be captured into a "
                         "CUDA graph (the graph would replay the capture's copy); put them on "
                         f"{device} before capture (e.g. a fastsample.SamplingBatch)")
    if pin:
        try:
            # A caller's own pinned tensor is copied first: it may be refilled before the GPU
            # reads it (a staging buffer reused every step).
            pinned = (torch.empty_like(t, pin_memory=True).copy_(t) if t.is_pinned()
                      else t.pin_memory())
            return pinned.to(device, non_blocking=True)
        except RuntimeError:  # no pinnable memory here (some WSL and container setups)
            pass
    # From pageable memory the driver stages the values before returning (it may wait then).
    return t.to(device, non_blocking=True)


def resident_blocks(device: torch.device) -> int:
    index = device.index if device.index is not None else torch.cuda.current_device()
    resident = _resident_blocks.get(index)
    if resident is None:
        sms = torch.cuda.get_device_properties(index).multi_processor_count
        resident = sms * int(_C.cuda_resident_blocks_per_sm())
        _resident_blocks[index] = resident
    return resident


def _launch(kernel, device: torch.device, args, edits, *logprobs) -> None:
    """Enqueues `kernel` (_C.cuda_sample / cuda_process) for its arguments on the device's
    current stream, with as many blocks as run at once and a workspace from torch's
    allocator."""
    if args.batch == 0:
        return
    with _device_scope(device):
        blocks = max(1, min(args.batch, resident_blocks(device)))
        # The stage 1-3 scratch grows with the call's lists (csrc/include/fastsample/scratch_layout.h).
        workspace = torch.empty(blocks * int(_C.cuda_workspace_bytes(args, edits)),
                                dtype=torch.uint8, device=device)
        kernel(args, edits, *logprobs, workspace=workspace.data_ptr(), blocks=blocks,
               stream=_stream(device))


def _device_scope(device: torch.device):
    return torch.cuda.device(device)


def _stream(device: torch.device) -> int:
    return int(torch.cuda.current_stream(device).cuda_stream)


def sample(args, edits, logprobs, device: torch.device) -> None:
    """Enqueues the fused sample kernel (_C.BatchArgs, EditArgs or None, LogprobArgs or None,
    their pointers on `device`)."""
    _launch(_C.cuda_sample, device, args, edits, logprobs)


def process(args, edits, device: torch.device) -> None:
    """Enqueues the fused process kernel (_C.BatchArgs, EditArgs or None)."""
    _launch(_C.cuda_process, device, args, edits)


def contrastive(pointers: Dict[str, int], device: torch.device) -> None:
    """Enqueues the contrastive-search scoring kernel (_C.cuda_contrastive's arguments, their
    pointers on `device`), one block per row at a time, as many as run at once."""
    if pointers["batch"] == 0:
        return
    with _device_scope(device):
        blocks = max(1, min(pointers["batch"], resident_blocks(device)))
        _C.cuda_contrastive(**pointers, blocks=blocks, stream=_stream(device))


def device_count() -> int:
    """GPUs the compiled backend can use (0 without CUDA support, a driver or a GPU)."""
    return int(_C.cuda_device_count()) if COMPILED else 0
