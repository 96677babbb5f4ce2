"""fastsample.sample and fastsample.process_logits: validation, then one fused kernel call."""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import _C, reference
from ..kernel import custom_ops, launch
from ..requests import arguments, edit_arguments
from ..kernel.sample_output import SampleOutput
from ..kernel.param_table import BY_NAME, STAGE_5
from ..requests.sampling_batch import SamplingBatch
from ..requests.sampling_params import LOGPROBS, LOGPROBS_MODES

_REALS = (float, int)
# sample()'s off values for the stage 1-3 parameters (see its plain-call test).
_ONE = 1.0
_ZERO = 0.0
_ZERO_INT = 0
_VANISHES = 2.0**-150  # a float32 reads this or less as 0 (arguments.Range.vanishes)
_SIGMA_HIGH = BY_NAME["top_n_sigma"].range.high
_DRY_BASE = BY_NAME["dry_base"].off  # llama.cpp's defaults, compared by identity as above
_DRY_ALLOWED_LENGTH = BY_NAME["dry_allowed_length"].off
_DRY_PENALTY_LAST_N = BY_NAME["dry_penalty_last_n"].off
_XTC_THRESHOLD = BY_NAME["xtc_threshold"].off  # llama.cpp's 0.1; an identity test, as above


def filter_params(logits: torch.Tensor, given: Dict[str, Any]
                   ) -> List[Tuple[str, arguments.Param]]:
    """Stages 4-5 parameters of a call's keywords (`given`), validated, as (kernel name, Param)
    pairs."""
    batch = logits.shape[0]
    dev = logits.device
    return [(name, arguments.param(name, given[name], batch, BY_NAME[name].range, dev))
            for name in STAGE_5]


def _stage_5(given: Dict[str, Any]) -> Dict[str, Any]:
    """The stage 4-5 keywords of a call's locals() (a function, not a comprehension in the
    caller: that would make the caller's locals cells, which torch.compile cannot trace)."""
    return {name: given[name] for name in STAGE_5}


def _extra_filters_off(top_n_sigma: Any, typical_p: Any, epsilon_cutoff: Any,
                       eta_cutoff: Any) -> bool:
    """Whether the filters beyond temperature, top-k, top-p and min-p (and XTC) are all off:
    the compiled custom ops and the common call's shortcut carry only those four."""
    return ((top_n_sigma is _ZERO or edit_arguments.is_default(top_n_sigma, 0.0))
            and (typical_p is _ONE or edit_arguments.is_default(typical_p, 1.0))
            and (epsilon_cutoff is _ZERO or edit_arguments.is_default(epsilon_cutoff, 0.0))
            and (eta_cutoff is _ZERO or edit_arguments.is_default(eta_cutoff, 0.0)))


def _uses_xtc(xtc_probability: Any) -> bool:
    """Whether some row may draw XTC's coin (then unseeded rows need seeds)."""
    return not (xtc_probability is _ZERO or edit_arguments.is_default(xtc_probability, 0.0))


def _compiled_refusal(call: str, supported: str) -> ValueError:
    return ValueError(f"inside torch.compile, fastsample.{call} supports {supported}; call it "
                      f"outside the compiled region for top_n_sigma, typical_p, "
                      f"epsilon_cutoff, eta_cutoff, XTC, penalties, masks, logprobs or "
                      f"return_valid")


def sample(
    logits: Any,
    *,
    temperature: Any = 1.0,
    top_k: Any = 0,
    top_p: Any = 1.0,
    min_p: Any = 0.0,
    top_n_sigma: Any = _ZERO,
    typical_p: Any = _ONE,
    epsilon_cutoff: Any = _ZERO,
    eta_cutoff: Any = _ZERO,
    xtc_threshold: Any = _XTC_THRESHOLD,
    xtc_probability: Any = _ZERO,
    seed: Any = None,
    offset: Any = None,
    generator: Optional[torch.Generator] = None,
    return_valid: bool = False,
    repetition_penalty: Any = _ONE,
    presence_penalty: Any = _ZERO,
    frequency_penalty: Any = _ZERO,
    no_repeat_ngram_size: Any = _ZERO_INT,
    dry_multiplier: Any = _ZERO,
    dry_base: Any = _DRY_BASE,
    dry_allowed_length: Any = _DRY_ALLOWED_LENGTH,
    dry_penalty_last_n: Any = _DRY_PENALTY_LAST_N,
    dry_sequence_breakers: Any = None,
    sequence_bias: Any = None,
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
    begin_suppress_tokens: Any = None,
    logprobs: Optional[int] = None,
    logprobs_mode: str = "raw",
    batch: Optional[SamplingBatch] = None,
) -> Union[torch.Tensor, SampleOutput]:
    """Samples one token per row: temperature, top-k, top-p, min-p and the draw in one fused call.

    Args:
        logits: [B, V] float32, float16 or bfloat16 torch tensor (any row stride), or a numpy
            float32/float16 array on CPU. Never modified.
        temperature: >= 0, default 1.0; 0 means greedy (argmax, lowest index on ties).
        top_k: -1 or 0 = off (default 0); k >= V is off too. Ties at the k-th value are kept.
        top_p: in (0, 1], default 1.0 (off).
        min_p: in [0, 1], default 0.0 (off).
        top_n_sigma: >= 0, default 0.0 (off): keep z >= max(z) - n * std(z), std over the
            row's finite logits after stages 0-3 (llama.cpp's top_n_sigma).
        typical_p: in (0, 1], default 1.0 (off); epsilon_cutoff, eta_cutoff: in [0, 1],
            default 0.0 (off): transformers' typical, epsilon and eta sampling, in that order
            on what top-k, top-n-sigma, top-p and min-p keep, each measuring probabilities
            over what the one before keeps (docs/semantics.md).
        xtc_threshold: in [0, 1], default 0.1; xtc_probability: in [0, 1], default 0.0 (off):
            llama.cpp's XTC, last of the filters: with that probability per step (a coin from
            the row's seed and offset), when two or more tokens have a probability >=
            xtc_threshold over what the other filters keep, all but the least likely of them
            are removed.
            Each of the ten is a scalar for the batch (a 0-d tensor included) or one value per
            row (list, tuple, numpy array or tensor of length B).
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
        no_repeat_ngram_size: an int >= 0, default 0 (off), or one per row: transformers'
            rule over the history (prompt then output ids, in order): every token that would
            complete an n-gram already in it is masked (n = 1 masks every token of it).
        dry_multiplier: >= 0, default 0.0 (off); dry_base: >= 1, default 1.75;
            dry_allowed_length: an int >= 0, default 2; dry_penalty_last_n: -1 (default, the
            whole history), 0 (off) or n >= 1 (the history's last n ids); each a scalar or one
            per row. llama.cpp's DRY over the history, after the penalties: a token that would
            extend a repeat of the history's end (at least dry_allowed_length ids long, none
            after the last sequence breaker) loses
            multiplier * base ** (repeat length - allowed_length).
        dry_sequence_breakers: token-id sequences ([[13], [25, 7]]) for every row, or one list
            of them per row (None: none). A repeat never reaches past the latest breaker; a
            one-token breaker is never penalized. Strings must be tokenized first.
        prompt_token_ids, output_token_ids: the history, an int64 tensor [B, L] padded with -1,
            or one list of ids per row, each in generation order. Ids must lie in [0, V).
        output_token_counts: instead of repeated ids: int [B, L] counts beside unique
            output_token_ids (counts kept by the caller).
        logit_bias: {token_id: bias} for every row, or one dict per row; biases clamped to
            [-100, 100].
        sequence_bias: {tuple of token ids: bias} (or a list of [ids, bias] pairs) for every
            row, or one dict per row; transformers' rule: a sequence's bias (finite, or -inf to
            ban) is added to its last token when the ids before it end the history (prompt
            then output); a one-token sequence always applies. Added after logit_bias.
        allowed_token_ids, banned_token_ids: one list of ids for every row, one list per row, or
            an int64 tensor [B, L] padded with -1. An empty allowed list is rejected.
        token_bitmask: int32 [B, ceil(V/32)]; bit j of word w allows token 32w + j (xgrammar /
            llguidance layout).
        min_tokens: >= 0, default 0; while num_generated < min_tokens, eos_token_id (unless
            ignore_eos) and stop_token_ids are masked. num_generated defaults to the number of
            output_token_ids of the row (0 without them). Scalars or per row.
        begin_suppress_tokens: ids masked at the row's first token only (num_generated 0;
            transformers' begin_suppress_tokens); one list for every row or one per row.
        logprobs: None (off) or n in [0, 20]: return the sampled token's logprob and the top n.
        logprobs_mode: "raw" (default; log_softmax of the logits after stage 0) or "processed"
            (log_softmax of z over the keep-set).
        batch: a fastsample.SamplingBatch holding every row's parameters, random state,
            histories, masks and logprobs plan (instead of the keywords above, which must then
            stay unset; return_valid may be given). Rows of the logits follow the batch's rows.
            The batch is not changed: call `batch.advance(tokens)` once per step.

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
    if batch is not None:
        check_batch_alone("sample", locals(), SAMPLE_DEFAULTS)
        return _sample_batch(logits, batch, return_valid)
    # The defaults are the module's own objects: an identity test settles the common call.
    plain = (logprobs is None and logit_bias is None and sequence_bias is None
             and allowed_token_ids is None
             and banned_token_ids is None and token_bitmask is None
             and prompt_token_ids is None and output_token_ids is None
             and output_token_counts is None and eos_token_id is None
             and stop_token_ids is None and num_generated is None and ignore_eos is False
             and begin_suppress_tokens is None
             and (repetition_penalty is _ONE or edit_arguments.is_default(repetition_penalty, 1.0))
             and (presence_penalty is _ZERO or edit_arguments.is_default(presence_penalty, 0.0))
             and (frequency_penalty is _ZERO or edit_arguments.is_default(frequency_penalty, 0.0))
             and (no_repeat_ngram_size is _ZERO_INT
                  or edit_arguments.is_default(no_repeat_ngram_size, 0))
             and dry_multiplier is _ZERO and dry_base is _DRY_BASE
             and dry_allowed_length is _DRY_ALLOWED_LENGTH
             and dry_penalty_last_n is _DRY_PENALTY_LAST_N and dry_sequence_breakers is None
             and (min_tokens is _ZERO_INT or edit_arguments.is_default(min_tokens, 0)))
    if torch.compiler.is_compiling():
        # Traced by torch.compile: the custom op keeps the step in one graph.
        if (not plain or generator is not None or return_valid or _uses_xtc(xtc_probability)
                or not _extra_filters_off(top_n_sigma, typical_p, epsilon_cutoff, eta_cutoff)):
            raise _compiled_refusal("sample", "temperature, top_k, top_p, min_p, seed and "
                                              "offset")
        return custom_ops.compiled_sample(logits, temperature, top_k, top_p, min_p, seed, offset)
    if (plain and xtc_probability is _ZERO and xtc_threshold is _XTC_THRESHOLD
            and typical_p is _ONE and epsilon_cutoff is _ZERO and eta_cutoff is _ZERO):
        out = _fast_sample(logits, temperature, top_k, top_p, min_p, top_n_sigma, seed, offset,
                           generator, return_valid)
        if out is not None:
            return out
    logits = arguments.as_logits(logits)
    if not launch.runs_compiled(logits):
        return reference.sample(logits, seed=seed, offset=offset, generator=generator,
                                return_valid=return_valid, logprobs=logprobs,
                                logprobs_mode=logprobs_mode,
                                **_stage_5(locals()), **edit_arguments.select(locals()))
    batch, vocab = logits.shape
    params = filter_params(logits, locals())
    edits = None if plain else edit_arguments.build(batch, vocab, logits.device,
                                            **edit_arguments.select(locals()))
    lp = logprob_outputs(logprobs, logprobs_mode, batch, logits.device)
    s = arguments.seeds(seed, offset, generator, batch, logits.device)
    params += [("seed", s.seed), ("offset", s.offset)]
    return launch.run_sample(logits, launch.batch_args(logits, params),
                              None if edits is None else edits.kernel_args(), lp, return_valid)


def logprob_outputs(n: Any, mode: Any, batch: int, device: torch.device):
    if n is None:
        return None
    arguments.check_scalar("logprobs", n, LOGPROBS)
    if mode not in LOGPROBS_MODES:
        raise ValueError(f"logprobs_mode={mode!r} is not allowed; use one of {LOGPROBS_MODES}")
    return launch.LogprobOutputs(int(n), mode == "processed", batch, device)


def _fast_sample(logits, temperature, top_k, top_p, min_p, top_n_sigma, seed, offset,
                 generator, return_valid):
    """The common call, checked with a few comparisons and run at once: a CPU [B, V] tensor
    with a contiguous last dimension and plain int/float scalars in range. Returns None to take
    the general path (which also produces every error message). At B = 1 this call's cost is
    part of every decode step, so it reads each tensor attribute once."""
    if type(logits) is not torch.Tensor:
        return None
    dtype = arguments.FLOAT_DTYPES.get(logits.dtype)
    shape = logits.shape
    if (dtype is None or len(shape) != 2 or not logits.is_cpu or logits.requires_grad
            or not 1 <= shape[1] <= arguments.MAX_VOCAB or logits.stride(1) != 1):
        return None
    if not (type(temperature) in _REALS and 0.0 <= temperature <= arguments.TEMPERATURE.high
            and (temperature == 0.0 or temperature > _VANISHES)
            and type(top_k) is int and -1 <= top_k <= arguments.MAX_SEED
            and type(top_p) in _REALS and 0.0 < top_p <= 1.0
            and type(min_p) in _REALS and 0.0 <= min_p <= 1.0
            and (min_p == 0.0 or min_p > _VANISHES)
            and (top_n_sigma is _ZERO or (type(top_n_sigma) in _REALS
                                          and 0.0 <= top_n_sigma <= _SIGMA_HIGH
                                          and (top_n_sigma == 0.0 or top_n_sigma > _VANISHES)))
            and (seed is None or (type(seed) is int and -1 <= seed <= arguments.MAX_SEED))
            and (offset is None or (type(offset) is int and 0 <= offset <= arguments.MAX_SEED))
            and (generator is None or type(generator) is torch.Generator)):
        return None
    args = _C.BatchArgs()
    args.logits = logits.data_ptr()
    args.dtype = dtype
    args.batch = batch = shape[0]
    args.vocab = shape[1]
    args.row_stride = logits.stride(0)
    args.temperature = temperature
    args.top_k = top_k
    args.top_p = top_p
    args.min_p = min_p
    if top_n_sigma is not _ZERO:
        args.top_n_sigma = top_n_sigma
    tokens = torch.from_numpy(np.empty(batch, dtype=np.int64))
    if seed is None or seed == -1:
        # One draw of B seeds, as arguments.seeds makes for unseeded rows, straight into the
        # output (the kernel reads each row's seed before writing its token).
        args.seed_rows = arguments.draw_seeds(tokens, generator).data_ptr()
    else:
        args.seed = seed
    if offset is not None:
        args.offset = offset
    return launch.run_sample(logits, args, None, None, return_valid, tokens)


def process_logits(
    logits: Any,
    *,
    temperature: Any = 1.0,
    top_k: Any = 0,
    top_p: Any = 1.0,
    min_p: Any = 0.0,
    top_n_sigma: Any = 0.0,
    typical_p: Any = 1.0,
    epsilon_cutoff: Any = 0.0,
    eta_cutoff: Any = 0.0,
    xtc_threshold: Any = _XTC_THRESHOLD,
    xtc_probability: Any = 0.0,
    seed: Any = None,
    offset: Any = None,
    generator: Optional[torch.Generator] = None,
    repetition_penalty: Any = 1.0,
    presence_penalty: Any = 0.0,
    frequency_penalty: Any = 0.0,
    no_repeat_ngram_size: Any = 0,
    dry_multiplier: Any = 0.0,
    dry_base: Any = _DRY_BASE,
    dry_allowed_length: Any = _DRY_ALLOWED_LENGTH,
    dry_penalty_last_n: Any = _DRY_PENALTY_LAST_N,
    dry_sequence_breakers: Any = None,
    sequence_bias: Any = None,
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
    begin_suppress_tokens: Any = None,
    batch: Optional[SamplingBatch] = None,
) -> torch.Tensor:
    """The sample() chain without the draw: what a transformers logits processor returns.

    Same parameters as `sample` (stages 1-3 included; `batch` instead of the keywords); seed,
    offset and generator key XTC's coin only, and unseeded rows draw seeds from `generator`
    only when some row's xtc_probability is above 0.
    Returns a new float32 tensor [B, V] on the logits' device:
    z = logits / temperature on the keep-set, -inf elsewhere. Greedy rows (temperature 0) keep
    only their argmax, unscaled; rows whose logits are all -inf/NaN come back all -inf.
    The input is never modified.
    """
    given = locals()
    if batch is not None:
        check_batch_alone("process_logits", given, _PROCESS_DEFAULTS)
        return _process_batch(logits, batch)
    if torch.compiler.is_compiling():
        if (not edit_arguments.all_off(edit_arguments.select(given))
                or not _extra_filters_off(top_n_sigma, typical_p, epsilon_cutoff, eta_cutoff)
                or _uses_xtc(xtc_probability)
                or seed is not None or offset is not None or generator is not None):
            raise _compiled_refusal("process_logits", "temperature, top_k, top_p and min_p")
        return custom_ops.compiled_process(logits, temperature, top_k, top_p, min_p)
    logits = arguments.as_logits(logits)
    if not launch.runs_compiled(logits):
        return reference.process_logits(logits, seed=seed, offset=offset, generator=generator,
                                        **_stage_5(given), **edit_arguments.select(given))
    rows, vocab = logits.shape
    params = filter_params(logits, given)
    if _uses_xtc(xtc_probability):
        s = arguments.seeds(seed, offset, generator, rows, logits.device)
        params += [("seed", s.seed), ("offset", s.offset)]
    else:
        arguments.check_seeds(seed, offset, generator, rows)
    edits = edit_arguments.build(rows, vocab, logits.device, **edit_arguments.select(given))
    return launch.run_process(logits, launch.batch_args(logits, params),
                               None if edits is None else edits.kernel_args())


def _keyword_defaults(fn) -> Dict[str, Any]:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name not in ("batch", "return_valid")}


SAMPLE_DEFAULTS = _keyword_defaults(sample)
_PROCESS_DEFAULTS = _keyword_defaults(process_logits)


def check_batch_alone(call: str, given: Dict[str, Any], defaults: Dict[str, Any]) -> None:
    """A batch carries every parameter: a keyword given beside it would be ignored."""
    extra = [name for name, default in defaults.items()
             if given[name] is not default and not (type(given[name]) in (int, float, bool)
                                                    and type(default) in (int, float, bool)
                                                    and given[name] == default)]
    if extra:
        raise TypeError(f"{call}(logits, batch=...) takes every parameter from the batch; "
                        f"got also {', '.join(extra)}: set them in the batch's SamplingParams")


def _batch_logits(logits: Any, batch: Any) -> torch.Tensor:
    if not isinstance(batch, SamplingBatch):
        raise TypeError(f"batch must be a fastsample.SamplingBatch, got {type(batch).__name__}")
    logits = arguments.as_logits(logits)
    batch.check_logits(logits)
    return logits


def _sample_batch(logits: Any, batch: SamplingBatch, return_valid: bool):
    logits = _batch_logits(logits, batch)
    if not launch.runs_compiled(logits):
        return reference.sample(logits, return_valid=return_valid, **batch.kwargs(logits=logits))
    args, edits = batch.kernel_args(logits)
    return launch.run_sample(logits, args, edits, batch.logprob_outputs(), return_valid)


def _process_batch(logits: Any, batch: SamplingBatch) -> torch.Tensor:
    logits = _batch_logits(logits, batch)
    if not launch.runs_compiled(logits):
        return reference.process_logits(logits, **batch.kwargs(draw=False, logits=logits))
    args, edits = batch.kernel_args(logits)
    return launch.run_process(logits, args, edits)
