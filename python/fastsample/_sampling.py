"""fastsample.sample and fastsample.process_logits: validation, then one fused kernel call."""
from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch

from . import _cuda, _edits, _ops, _params, reference
from ._C import cpu_process, cpu_sample
from ._output import SampleOutput
from ._sampling_params import LOGPROBS, LOGPROBS_MODES

_threads = 0  # 0: the pool's size (see set_num_threads)

_REALS = (float, int)
# sample()'s off values for the stage 1-3 parameters (see its plain-call test).
_ONE = 1.0
_ZERO = 0.0
_ZERO_INT = 0
_VANISHES = 2.0**-150  # a float32 reads this or less as 0 (_params.Range.vanishes)


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
    repetition_penalty: Any = _ONE,
    presence_penalty: Any = _ZERO,
    frequency_penalty: Any = _ZERO,
    prompt_token_ids: Any = None,
    output_token_ids: Any = None,
    output_token_counts: Any = None,
    logit_bias: Any = None,
    allowed_token_ids: Any = None,
    banned_token_ids: Any = None,
    token_bitmask: Optional[torch.Tensor] = None,
    min_tokens: Any = _ZERO_INT,
    eos_token_id: Any = None,
    stop_token_ids: Any = None,
    num_generated: Any = None,
    ignore_eos: bool = False,
    logprobs: Optional[int] = None,
    logprobs_mode: str = "raw",
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
        repetition_penalty: > 0, default 1.0 (off); HF/CTRL rule over the distinct tokens of
            prompt_token_ids and output_token_ids. Scalar or per row.
        presence_penalty, frequency_penalty: finite, default 0.0 (off); OpenAI rule over
            output_token_ids: x -= frequency * count + presence. Scalar or per row.
        prompt_token_ids, output_token_ids: the history, an int64 tensor [B, L] padded with -1,
            or one list of ids per row. Ids must lie in [0, V).
        output_token_counts: instead of repeated ids: int [B, L] counts beside unique
            output_token_ids (counts kept by the caller).
        logit_bias: {token_id: bias} for every row, or one dict per row; biases clamped to
            [-100, 100].
        allowed_token_ids, banned_token_ids: one list of ids for every row, one list per row, or
            an int64 tensor [B, L] padded with -1. An empty allowed list is rejected.
        token_bitmask: int32 [B, ceil(V/32)]; bit j of word w allows token 32w + j (xgrammar /
            llguidance layout).
        min_tokens: >= 0, default 0; while num_generated < min_tokens, eos_token_id (unless
            ignore_eos) and stop_token_ids are masked. num_generated defaults to the number of
            output_token_ids of the row (0 without them). Scalars or per row.
        logprobs: None (off) or n in [0, 20]: return the sampled token's logprob and the top n.
        logprobs_mode: "raw" (default; log_softmax of the logits after stage 0) or "processed"
            (log_softmax of z over the keep-set).

    On CUDA tensors (when built with CUDA) the fused CUDA kernels run on the current stream and
    nothing waits for the GPU, except the check for rows with no valid token, which
    return_valid=True leaves to the caller (and which is skipped during CUDA-graph capture).
    Per-row parameters may then be tensors on the logits' device.

    Returns:
        int64 tensor [B] of token ids on the logits' device; with return_valid=True, a
        SampleOutput(tokens, valid) where tokens is -1 and valid False for rows whose logits are
        all -inf/NaN. Without return_valid, such a row raises ValueError.
    """
    if return_valid is not False and return_valid is not True:
        raise TypeError(f"return_valid must be a bool, got {type(return_valid).__name__}")
    # The defaults are the module's own objects: an identity test settles the common call.
    plain = (logprobs is None and logit_bias is None and allowed_token_ids is None
             and banned_token_ids is None and token_bitmask is None
             and prompt_token_ids is None and output_token_ids is None
             and output_token_counts is None and eos_token_id is None
             and stop_token_ids is None and num_generated is None and ignore_eos is False
             and (repetition_penalty is _ONE or _edits.is_default(repetition_penalty, 1.0))
             and (presence_penalty is _ZERO or _edits.is_default(presence_penalty, 0.0))
             and (frequency_penalty is _ZERO or _edits.is_default(frequency_penalty, 0.0))
             and (min_tokens is _ZERO_INT or _edits.is_default(min_tokens, 0)))
    if torch.compiler.is_compiling():
        # Traced by torch.compile: the custom op keeps the step in one graph.
        if not plain or generator is not None or return_valid:
            raise ValueError("inside torch.compile, fastsample.sample supports temperature, "
                             "top_k, top_p, min_p, seed and offset; call it outside the "
                             "compiled region for penalties, masks, logprobs or return_valid")
        return _ops.compiled_sample(logits, temperature, top_k, top_p, min_p, seed, offset)
    if plain:
        out = _fast_sample(logits, temperature, top_k, top_p, min_p, seed, offset, generator,
                           return_valid)
        if out is not None:
            return out
    logits = _params.as_logits(logits)
    on_cuda = _cuda.runs_on(logits.device)
    if logits.device.type != "cpu" and not on_cuda:
        return reference.sample(logits, temperature=temperature, top_k=top_k, top_p=top_p,
                                min_p=min_p, seed=seed, offset=offset, generator=generator,
                                return_valid=return_valid)
    batch, vocab = logits.shape
    temp, k, p, m = _filter_params(logits, temperature, top_k, top_p, min_p)
    edits = None if plain else _edits.build(batch, vocab, logits.device,
                                            **_edits.arguments(locals()))
    lp = _logprob_outputs(logprobs, logprobs_mode, batch, logits.device)
    s = _params.seeds(seed, offset, generator, batch, logits.device)
    args = (temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar, m.ptr(),
            s.seed.scalar, s.seed.ptr(), s.offset.scalar, s.offset.ptr())
    if on_cuda:
        return _run_sample_cuda(logits, args, return_valid, edits, lp)
    tokens = torch.from_numpy(np.empty(batch, dtype=np.int64))
    return _run_sample(logits, tokens, *args, return_valid, edits, lp)


class _LogprobOutputs:
    """Output tensors of stage 7 and the tuple the kernels take (module.cpp, set_logprobs)."""

    def __init__(self, n: int, processed: bool, batch: int, device: torch.device,
                 given: Optional[torch.Tensor] = None):
        self.logprob = torch.empty(batch, dtype=torch.float32, device=device)
        self.top_ids = torch.empty((batch, n), dtype=torch.int64, device=device)
        self.top_logprobs = torch.empty((batch, n), dtype=torch.float32, device=device)
        self.given = given
        self.packed = (n, processed, self.logprob.data_ptr(),
                       self.top_ids.data_ptr() if n else 0,
                       self.top_logprobs.data_ptr() if n else 0,
                       0 if given is None else given.data_ptr())

    def output(self, tokens: torch.Tensor, valid: torch.Tensor) -> SampleOutput:
        return SampleOutput(tokens, valid, self.logprob, self.top_ids, self.top_logprobs)


def _logprob_outputs(n: Any, mode: Any, batch: int, device: torch.device):
    if n is None:
        return None
    _params._check_scalar("logprobs", n, LOGPROBS)
    if mode not in LOGPROBS_MODES:
        raise ValueError(f"logprobs_mode={mode!r} is not allowed; use one of {LOGPROBS_MODES}")
    return _LogprobOutputs(int(n), mode == "processed", batch, device)


def _run_sample_cuda(logits: torch.Tensor, args: tuple, return_valid: bool, edits=None,
                     lp: Optional[_LogprobOutputs] = None):
    batch = logits.shape[0]
    tokens = torch.empty(batch, dtype=torch.int64, device=logits.device)
    want_valid = return_valid or lp is not None
    valid = torch.empty(batch, dtype=torch.bool, device=logits.device) if want_valid else None
    _cuda.sample(logits, _params.FLOAT_DTYPES[logits.dtype], tokens,
                 0 if valid is None else valid.data_ptr(), args,
                 None if edits is None else edits.packed(), None if lp is None else lp.packed)
    if lp is not None:
        return lp.output(tokens, valid)
    if valid is not None:
        return SampleOutput(tokens, valid)
    # Invalid rows come back as -1. Checking waits for the GPU, which a captured graph cannot
    # do: there (and with return_valid=True, the sync-free form) the caller checks.
    if not _cuda.capturing() and not bool((tokens >= 0).all()):
        raise ValueError(reference._invalid_rows_message(tokens >= 0))
    return tokens


def _fast_sample(logits, temperature, top_k, top_p, min_p, seed, offset, generator,
                 return_valid):
    """The common call, checked with a few comparisons and run at once: a CPU [B, V] tensor
    with a contiguous last dimension and plain int/float scalars in range. Returns None to take
    the general path (which also produces every error message). At B = 1 this call's cost is
    part of every decode step, so it reads each tensor attribute once."""
    if type(logits) is not torch.Tensor:
        return None
    dtype = _params.FLOAT_DTYPES.get(logits.dtype)
    shape = logits.shape
    if (dtype is None or len(shape) != 2 or not logits.is_cpu or logits.requires_grad
            or not 1 <= shape[1] <= _params.MAX_VOCAB or logits.stride(1) != 1):
        return None
    if not (type(temperature) in _REALS and 0.0 <= temperature <= _params.TEMPERATURE.high
            and (temperature == 0.0 or temperature > _VANISHES)
            and type(top_k) is int and -1 <= top_k <= _params.MAX_SEED
            and type(top_p) in _REALS and 0.0 < top_p <= 1.0
            and type(min_p) in _REALS and 0.0 <= min_p <= 1.0
            and (min_p == 0.0 or min_p > _VANISHES)
            and (seed is None or (type(seed) is int and -1 <= seed <= _params.MAX_SEED))
            and (offset is None or (type(offset) is int and 0 <= offset <= _params.MAX_SEED))
            and (generator is None or type(generator) is torch.Generator)):
        return None
    batch = shape[0]
    tokens = torch.from_numpy(np.empty(batch, dtype=np.int64))
    if seed is None or seed == -1:
        # One draw of B seeds, as _params.seeds makes for unseeded rows, straight into the
        # output (the kernel reads each row's seed before writing its token).
        seed, seed_ptr = 0, _params.draw_seeds(tokens, generator).data_ptr()
    else:
        seed_ptr = 0
    valid = torch.empty(batch, dtype=torch.bool) if return_valid else None
    invalid = cpu_sample(
        logits.data_ptr(), dtype, batch, shape[1], logits.stride(0), float(temperature), 0,
        top_k, 0, float(top_p), 0, float(min_p), 0, seed, seed_ptr,
        0 if offset is None else offset, 0, tokens.data_ptr(),
        0 if valid is None else valid.data_ptr(), _threads, None, None)
    if valid is not None:
        return SampleOutput(tokens, valid)
    if invalid:
        raise ValueError(reference._invalid_rows_message(tokens >= 0))
    return tokens


def _run_sample(logits, tokens, t, t_ptr, k, k_ptr, p, p_ptr, m, m_ptr, seed, seed_ptr, offset,
                offset_ptr, return_valid, edits=None, lp=None):
    batch, vocab = logits.shape
    valid = torch.empty(batch, dtype=torch.bool) if return_valid or lp is not None else None
    invalid = cpu_sample(
        logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], batch, vocab, logits.stride(0),
        t, t_ptr, k, k_ptr, p, p_ptr, m, m_ptr, seed, seed_ptr, offset, offset_ptr,
        tokens.data_ptr(), 0 if valid is None else valid.data_ptr(), _threads,
        None if edits is None else edits.packed(), None if lp is None else lp.packed,
    )
    if lp is not None:
        return lp.output(tokens, valid)
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
    repetition_penalty: Any = 1.0,
    presence_penalty: Any = 0.0,
    frequency_penalty: Any = 0.0,
    prompt_token_ids: Any = None,
    output_token_ids: Any = None,
    output_token_counts: Any = None,
    logit_bias: Any = None,
    allowed_token_ids: Any = None,
    banned_token_ids: Any = None,
    token_bitmask: Optional[torch.Tensor] = None,
    min_tokens: Any = 0,
    eos_token_id: Any = None,
    stop_token_ids: Any = None,
    num_generated: Any = None,
    ignore_eos: bool = False,
) -> torch.Tensor:
    """The sample() chain without the draw: what a transformers logits processor returns.

    Same parameters as `sample` (stages 1-3 included). Returns a new float32 tensor [B, V] on the logits' device:
    z = logits / temperature on the keep-set, -inf elsewhere. Greedy rows (temperature 0) keep
    only their argmax, unscaled; rows whose logits are all -inf/NaN come back all -inf.
    The input is never modified.
    """
    given = locals()
    if torch.compiler.is_compiling():
        if not _edits.all_off(_edits.arguments(given)):
            raise ValueError("inside torch.compile, fastsample.process_logits supports "
                             "temperature, top_k, top_p and min_p; apply penalties and masks "
                             "outside the compiled region")
        return _ops.compiled_process(logits, temperature, top_k, top_p, min_p)
    logits = _params.as_logits(logits)
    on_cuda = _cuda.runs_on(logits.device)
    if logits.device.type != "cpu" and not on_cuda:
        return reference.process_logits(logits, temperature=temperature, top_k=top_k,
                                        top_p=top_p, min_p=min_p)
    batch, vocab = logits.shape
    temp, k, p, m = _filter_params(logits, temperature, top_k, top_p, min_p)
    edits = _edits.build(batch, vocab, logits.device, **_edits.arguments(given))
    packed = None if edits is None else edits.packed()
    out = torch.empty((batch, vocab), dtype=torch.float32, device=logits.device)
    if on_cuda:
        _cuda.process(logits, _params.FLOAT_DTYPES[logits.dtype], out,
                      (temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar,
                       m.ptr()), packed)
        return out
    cpu_process(
        logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], batch, vocab, logits.stride(0),
        temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar, m.ptr(),
        out.data_ptr(), vocab, _threads, packed,
    )
    return out


def kernel_args(filters: tuple, seeds: _params.Seeds) -> tuple:
    """The 12 parameter arguments of the kernels (scalar, pointer pairs) for validated Params:
    temperature, top_k, top_p, min_p, seed, offset. Pointers stay valid while the tensors do."""
    temp, k, p, m = filters
    return (temp.scalar, temp.ptr(), k.scalar, k.ptr(), p.scalar, p.ptr(), m.scalar, m.ptr(),
            seeds.seed.scalar, seeds.seed.ptr(), seeds.offset.scalar, seeds.offset.ptr())


def run_prepared(logits: torch.Tensor, args: tuple, edits: Optional[tuple],
                 logprobs: Optional[_LogprobOutputs]) -> SampleOutput:
    """One fused sample call with arguments validated before and already on the logits' device
    (the Sampler's per-step path: no validation and no host-to-device copies). args: from
    kernel_args; edits: Edits.packed() or None. Returns a SampleOutput; rows without a valid
    token have token -1 (valid is set only with logprobs)."""
    if logits.dim() != 2 or logits.dtype not in _params.FLOAT_DTYPES or logits.stride(1) != 1:
        logits = _params.as_logits(logits)
    if logits.device.type == "cpu":
        tokens = torch.from_numpy(np.empty(logits.shape[0], dtype=np.int64))
        cpu_sample(logits.data_ptr(), _params.FLOAT_DTYPES[logits.dtype], logits.shape[0],
                   logits.shape[1], logits.stride(0), *args, tokens.data_ptr(), 0, _threads,
                   edits, None if logprobs is None else logprobs.packed)
        if logprobs is not None:
            return logprobs.output(tokens, tokens >= 0)
        return SampleOutput(tokens, None)
    if _cuda.runs_on(logits.device):
        tokens = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
        valid = torch.empty(logits.shape[0], dtype=torch.bool, device=logits.device)
        _cuda.sample(logits, _params.FLOAT_DTYPES[logits.dtype], tokens, valid.data_ptr(), args,
                     edits, None if logprobs is None else logprobs.packed)
        if logprobs is not None:
            return logprobs.output(tokens, valid)
        return SampleOutput(tokens, valid)
    raise ValueError(f"the Sampler runs on CPU or CUDA tensors (compiled kernels); got "
                     f"logits on {logits.device}")
