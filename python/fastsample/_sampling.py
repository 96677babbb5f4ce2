"""fastsample.sample and fastsample.process_logits: validation, then one fused kernel call."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from . import _cuda, _params, reference
from ._C import cpu_process, cpu_sample
from ._output import SampleOutput

_threads = 0  # 0: the pool's size (see set_num_threads)


def _filter_params(logits: torch.Tensor, temperature: Any, top_k: Any, top_p: Any, min_p: Any):
    batch = logits.shape[0]
    dev = logits.device
    return (
        _params.param("temperature", temperature, batch, _params.TEMPERATURE, dev),
        _params.param("top_k", top_k, batch, _params.TOP_K, dev),
        _params.param("top_p", top_p, batch, _params.TOP_P, dev),
        _params.param("min_p", min_p, batch, _params.MIN_P, dev),
    )


def sample(
    logits: Any,
    *,
    temperature: Any = 1.0,
    top_k: Any = 0,
    top_p: Any = 1.0,
    min_p: Any = 0.0,
    seed: Any = None,
    offset: Any = None,
    generator: Optional[torch.Generator] = None,
    return_valid: bool = False,
) -> Union[torch.Tensor, SampleOutput]:
    """Samples one token per row: temperature, top-k, top-p, min-p and the draw in one fused call.

    Args:
        logits: [B, V] float32, float16 or bfloat16 torch tensor (any row stride), or a numpy
            float32/float16 array on CPU. Never modified.
        temperature: >= 0, default 1.0; 0 means greedy (argmax, lowest index on ties).
        top_k: -1 or 0 = off (default 0); k >= V is off too. Ties at the k-th value are kept.
        top_p: in (0, 1], default 1.0 (off).
        min_p: in [0, 1], default 0.0 (off).
            Each of the four is a scalar for the batch or one value per row (list, tuple, numpy
            array or tensor of length B).
        seed: int in [0, 2**63-1] makes a row reproducible; None or -1 (default None) draws one
            from `generator`. An int, or one value per row.
        offset: int >= 0 (default 0), or one per row: the counter of the row's Philox stream.
            A decode loop advances it every step so that a seeded row does not repeat its draw.
        generator: torch.Generator for unseeded rows (default: torch's default generator).
        return_valid: also return which rows had a valid token.

    On CUDA tensors (when built with CUDA) the fused CUDA kernels run on the current stream and
    nothing waits for the GPU, except the check for rows with no valid token, which
    return_valid=True leaves to the caller (and which is skipped during CUDA-graph capture).
    Per-row parameters may then be tensors on the logits' device.

    Returns:
        int64 tensor [B] of token ids on the logits' device; with return_valid=True, a
        SampleOutput(tokens, valid) where tokens is -1 and valid False for rows whose logits are
        all -inf/NaN. Without return_valid, such a row raises ValueError.
    """
    fast = _scalar_call(logits, temperature, top_k, top_p, min_p, seed, offset, generator)
    if fast is not None:
        tokens = torch.from_numpy(np.empty(logits.shape[0], dtype=np.int64))
        return _run_sample(logits, tokens, *fast, generator, return_valid)
    logits = _params.as_logits(logits)
    on_cuda = _cuda.runs_on(logits.device)
    if logits.device.type != "cpu" and not on_cuda:
        return reference.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                min_p=min_p, seed=seed, offset=offset, generator=generator,
                                return_valid=return_valid)
    batch = logits.shape[0]
    temp, k, p, m = _filter_params(logits, temperature, top_k, top_p, min_p)
    s = _params.seeds(seed, offset, generator, batch, logits.device)
    args = (temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar, m.ptr(),
            s.seed.scalar, s.seed.ptr(), s.offset.scalar, s.offset.ptr())
    if on_cuda:
        return _run_sample_cuda(logits, args, return_valid)
    tokens = torch.from_numpy(np.empty(batch, dtype=np.int64))
    return _run_sample(logits, tokens, *args, None, return_valid)


def _run_sample_cuda(logits: torch.Tensor, args: tuple, return_valid: bool):
    batch = logits.shape[0]
    tokens = torch.empty(batch, dtype=torch.int64, device=logits.device)
    valid = torch.empty(batch, dtype=torch.bool, device=logits.device) if return_valid else None
    _cuda.sample(logits, _params.FLOAT_DTYPES[logits.dtype], tokens,
                 0 if valid is None else valid.data_ptr(), args)
    if valid is not None:
        return SampleOutput(tokens, valid)
    # Invalid rows come back as -1. Checking waits for the GPU, which a captured graph cannot
    # do: there (and with return_valid=True, the sync-free form) the caller checks.
    if not _cuda.capturing() and not bool((tokens >= 0).all()):
        raise ValueError(reference._invalid_rows_message(tokens >= 0))
    return tokens


def _scalar_call(logits, temperature, top_k, top_p, min_p, seed, offset, generator):
    """The common call, checked with a few comparisons: a CPU [B, V] tensor with a contiguous
    last dimension and plain int/float scalars in range. Returns the kernel's parameter
    arguments, or None to take the general path (which also produces every error message)."""
    if (type(logits) is not torch.Tensor or not logits.is_cpu or logits.requires_grad
            or logits.dim() != 2 or logits.dtype not in _params.FLOAT_DTYPES
            or logits.stride(1) != 1 or not 1 <= logits.shape[1] <= _params.MAX_VOCAB):
        return None
    if not (type(temperature) in _REALS and 0.0 <= temperature <= _params.TEMPERATURE.high
            and type(top_k) is int and -1 <= top_k <= _params.MAX_SEED
            and type(top_p) in _REALS and 0.0 < top_p <= 1.0
            and type(min_p) in _REALS and 0.0 <= min_p <= 1.0
            and (seed is None or (type(seed) is int and -1 <= seed <= _params.MAX_SEED))
            and (offset is None or (type(offset) is int and 0 <= offset <= _params.MAX_SEED))
            and (generator is None or type(generator) is torch.Generator)):
        return None
    if seed is None or seed == -1:
        seed_args = (0, _SEEDS_IN_OUTPUT)
    else:
        seed_args = (seed, 0)
    return (float(temperature), 0, top_k, 0, float(top_p), 0, float(min_p), 0, *seed_args,
            0 if offset is None else offset, 0)


_REALS = (float, int)
_SEEDS_IN_OUTPUT = -1  # marker: unseeded rows' seeds are drawn into the output tensor


def _run_sample(logits, tokens, t, t_ptr, k, k_ptr, p, p_ptr, m, m_ptr, seed, seed_ptr, offset,
                offset_ptr, generator, return_valid):
    batch, vocab = logits.shape
    if seed_ptr == _SEEDS_IN_OUTPUT:
        # One draw of B seeds, as _params.seeds makes for unseeded rows, straight into the output
        # (the kernel reads each row's seed before writing its token).
        seed_ptr = _params.draw_seeds(tokens, generator).data_ptr()
    valid = torch.empty(batch, dtype=torch.bool) if return_valid else None
    invalid = cpu_sample(
        logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], batch, vocab, logits.stride(0),
        t, t_ptr, k, k_ptr, p, p_ptr, m, m_ptr, seed, seed_ptr, offset, offset_ptr,
        tokens.data_ptr(), 0 if valid is None else valid.data_ptr(), _threads,
    )
    if valid is not None:
        return SampleOutput(tokens, valid)
    if invalid:
        raise ValueError(reference._invalid_rows_message(tokens >= 0))
    return tokens


def process_logits(
    logits: Any,
    *,
    temperature: Any = 1.0,
    top_k: Any = 0,
    top_p: Any = 1.0,
    min_p: Any = 0.0,
) -> torch.Tensor:
    """The sample() chain without the draw: what a transformers logits processor returns.

    Same parameters as `sample`. Returns a new float32 tensor [B, V] on the logits' device:
    z = logits / temperature on the keep-set, -inf elsewhere. Greedy rows (temperature 0) keep
    only their argmax, unscaled; rows whose logits are all -inf/NaN come back all -inf.
    The input is never modified.
    """
    logits = _params.as_logits(logits)
    on_cuda = _cuda.runs_on(logits.device)
    if logits.device.type != "cpu" and not on_cuda:
        return reference.process_logits(logits, temperature=temperature, top_k=top_k,
                                        top_p=top_p, min_p=min_p)
    batch, vocab = logits.shape
    temp, k, p, m = _filter_params(logits, temperature, top_k, top_p, min_p)
    out = torch.empty((batch, vocab), dtype=torch.float32, device=logits.device)
    if on_cuda:
        _cuda.process(logits, _params.FLOAT_DTYPES[logits.dtype], out,
                      (temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar,
                       m.ptr()))
        return out
    cpu_process(
        logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], batch, vocab, logits.stride(0),
        temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar, m.ptr(),
        out.data_ptr(), vocab, _threads,
    )
    return out
