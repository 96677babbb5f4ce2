"""Launching the CUDA kernels: the logits' device, its current stream and a workspace from
torch's caching allocator. Nothing here waits for the GPU, so a decode step that calls
fastsample.sample can be captured in a CUDA graph."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from . import _C

COMPILED = bool(_C.cuda_compiled)

# Resident blocks per device (SMs x blocks per SM, from the occupancy API): the grid never has
# more blocks than run at once, since each block loops over rows and owns a scratch share.
_resident_blocks: Dict[int, int] = {}


def runs_on(device: torch.device) -> bool:
    """True when tensors on `device` are sampled by the compiled CUDA kernels."""
    return COMPILED and device.type == "cuda"


def capturing() -> bool:
    """True while the current CUDA stream is being captured into a graph (no syncs allowed)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _launch_shape(device: torch.device, batch: int, vocab: int,
                  edits: Optional[tuple]) -> Tuple[torch.Tensor, int]:
    index = device.index if device.index is not None else torch.cuda.current_device()
    resident = _resident_blocks.get(index)
    if resident is None:
        sms = torch.cuda.get_device_properties(index).multi_processor_count
        resident = sms * int(_C.cuda_resident_blocks_per_sm())
        _resident_blocks[index] = resident
    blocks = max(1, min(batch, resident))
    # The stage 1-3 scratch is sized by the call's lists (module.cpp, cuda_workspace_bytes).
    workspace = torch.empty(blocks * int(_C.cuda_workspace_bytes(vocab, edits)),
                            dtype=torch.uint8, device=device)
    return workspace, blocks


def _stream(device: torch.device) -> int:
    return int(torch.cuda.current_stream(device).cuda_stream)


def sample(logits: torch.Tensor, dtype_code: int, tokens: torch.Tensor, valid_ptr: int,
           params: tuple, edits: Optional[tuple] = None, logprobs: Optional[tuple] = None) -> None:
    """Enqueues the fused sample kernel. params: (T, T_ptr, k, k_ptr, p, p_ptr, m, m_ptr, seed,
    seed_ptr, offset, offset_ptr) as the CPU kernel takes them, pointers into device memory;
    edits / logprobs: the packed stage 1-3 and stage 7 tuples, or None."""
    batch, vocab = logits.shape
    if batch == 0:
        return
    with torch.cuda.device(logits.device):
        workspace, blocks = _launch_shape(logits.device, batch, vocab, edits)
        _C.cuda_sample(logits.data_ptr(), dtype_code, batch, vocab, logits.stride(0), *params,
                       tokens.data_ptr(), valid_ptr, workspace.data_ptr(), blocks,
                       _stream(logits.device), edits, logprobs)


def process(logits: torch.Tensor, dtype_code: int, out: torch.Tensor, params: tuple,
            edits: Optional[tuple] = None) -> None:
    """Enqueues the fused process kernel (params: T, T_ptr, k, k_ptr, p, p_ptr, m, m_ptr)."""
    batch, vocab = logits.shape
    if batch == 0:
        return
    with torch.cuda.device(logits.device):
        workspace, blocks = _launch_shape(logits.device, batch, vocab, edits)
        _C.cuda_process(logits.data_ptr(), dtype_code, batch, vocab, logits.stride(0), *params,
                        out.data_ptr(), out.stride(0), workspace.data_ptr(), blocks,
                        _stream(logits.device), edits)


def device_count() -> int:
    """GPUs the compiled backend can use (0 without CUDA support, a driver or a GPU)."""
    return int(_C.cuda_device_count()) if COMPILED else 0
