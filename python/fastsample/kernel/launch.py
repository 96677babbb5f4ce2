"""The kernel boundary: one call's arguments as named structs (csrc/bindings/
batch_args_binding.h): a `_C.BatchArgs` (logits, stages 4-6, outputs), a `_C.EditArgs` (stages
1-3) and a `_C.LogprobArgs` (stage 7), and one launch path per device for sampling and for
processed logits. sample, process_logits, prompt_logprobs and the Sampler all end here, with
values validated already; a field name the kernels do not have is an AttributeError."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import _C
from . import cuda
from .sample_output import SampleOutput, invalid_rows_message
from ..requests.arguments import FLOAT_DTYPES, Param

_CPU = torch.device("cpu")


def set_parameter(target: Any, name: str, p: Param) -> None:
    """Sets the per-row parameter `name` of a FilterArgs / EditArgs: the batch's scalar, and
    the pointer to one value per row when `p` has them (the tensor must outlive the call)."""
    setattr(target, name, p.scalar)
    setattr(target, name + "_rows", 0 if p.rows is None else p.rows.data_ptr())


def set_ids(target: _C.EditArgs, name: str, ids: torch.Tensor) -> None:
    """Sets the id list `name` (name_ids / _stride / _len) of an EditArgs: a [B, L] int64
    tensor of ids (-1 padding; row stride 0 = one list for every row)."""
    if ids.shape[1]:
        setattr(target, name + "_ids", ids.data_ptr())
        setattr(target, name + "_stride", ids.stride(0))
        setattr(target, name + "_len", ids.shape[1])


class LogprobOutputs:
    """Stage 7's output tensors and their kernel arguments. given: prompt scoring's token per
    row (only raw logprobs are computed then)."""

    def __init__(self, n: int, processed: bool, batch: int, device: torch.device,
                 given: Optional[torch.Tensor] = None):
        self.logprob = torch.empty(batch, dtype=torch.float32, device=device)
        self.top_ids = torch.empty((batch, n), dtype=torch.int64, device=device)
        self.top_logprobs = torch.empty((batch, n), dtype=torch.float32, device=device)
        self.given = given
        args = _C.LogprobArgs()
        args.n = n
        args.processed = processed
        args.out_logprob = self.logprob.data_ptr()
        if n:
            args.out_top_ids = self.top_ids.data_ptr()
            args.out_top_logprobs = self.top_logprobs.data_ptr()
        if given is not None:
            args.given_tokens = given.data_ptr()
        self.args = args  # _C.LogprobArgs

    def output(self, tokens: torch.Tensor, valid: torch.Tensor) -> SampleOutput:
        return SampleOutput(tokens, valid, self.logprob, self.top_ids, self.top_logprobs)


def batch_args(logits: torch.Tensor,
               params: Sequence[Tuple[str, Param]] = ()) -> _C.BatchArgs:
    """The arguments of one call over `logits` ([B, V], last dimension contiguous) with the
    given stages 4-6 parameters by name (the rest off). run_sample / run_process set the
    outputs."""
    a = _C.BatchArgs()
    set_logits(a, logits)
    for name, p in params:
        set_parameter(a, name, p)
    return a


def set_logits(a: _C.BatchArgs, logits: torch.Tensor) -> None:
    """Points `a` at `logits` (a decode loop's prepared arguments: at each step's logits)."""
    a.logits = logits.data_ptr()
    a.dtype = FLOAT_DTYPES[logits.dtype]
    a.batch, a.vocab = logits.shape
    a.row_stride = logits.stride(0)


def set_drafts(a: _C.BatchArgs, tree: Any, rows: int) -> torch.Tensor:
    """Makes `a` (one row per node of `tree`, a requests.draft_tree.DraftTree) a verification:
    run_sample then writes each node's verdict. Returns the int64 [rows] tensor the kernel
    writes each node's accepted child into (-1: none); without drafts every node is a root
    that samples, and it stays -1."""
    child = torch.full((rows,), -1, dtype=torch.int64, device=tree.tokens.device)
    drafts = tree.tokens.shape[1]
    if drafts == 0:
        return child
    # Contiguous [B, S] (and [B, S, V]) tensors: strides from the shapes, which a size-1
    # dimension's reported stride need not match.
    a.draft_tokens = tree.tokens.data_ptr()
    a.draft_stride = drafts
    a.num_drafts = drafts
    if tree.parents is not None:
        a.parents = tree.parents.data_ptr()
    if tree.probs is not None:
        a.draft_probs = tree.probs.data_ptr()
        a.probs_request_stride = drafts * tree.probs.shape[2]
        a.probs_draft_stride = tree.probs.shape[2]
    a.out_child = child.data_ptr()
    return child


def runs_compiled(logits: torch.Tensor) -> bool:
    """Whether the compiled kernels take a call over these logits; when not (a device without
    them), fastsample.reference runs the whole call, every argument included."""
    return logits.is_cpu or cuda.runs_on(logits.device)


def run_contrastive(context: torch.Tensor, candidates: torch.Tensor, mask: torch.Tensor,
                    probs: torch.Tensor, keep: torch.Tensor, penalty: torch.Tensor,
                    out: torch.Tensor) -> None:
    """Contrastive search's candidate scores into out (float32 [B, k]) on the tensors' device:
    context [B, L, D] and candidates [B, k, D] in one logits dtype with their last dimension
    contiguous, mask uint8 [B, L], probs float32 [B, k], keep / penalty float32 [B] (1 - alpha,
    alpha), all contiguous but the hidden states (csrc/include/fastsample/contrastive.h)."""
    pointers = dict(
        context=context.data_ptr(), candidates=candidates.data_ptr(), mask=mask.data_ptr(),
        probs=probs.data_ptr(), keep_weight=keep.data_ptr(), penalty_weight=penalty.data_ptr(),
        out=out.data_ptr(), batch=context.shape[0], length=context.shape[1],
        k=candidates.shape[1], dim=context.shape[2], context_row_stride=context.stride(0),
        context_pos_stride=context.stride(1), candidate_row_stride=candidates.stride(0),
        candidate_stride=candidates.stride(1), dtype=FLOAT_DTYPES[context.dtype])
    if _on_cpu(context):
        _C.cpu_contrastive(**pointers)
    else:
        _check_device(context.device)
        cuda.contrastive(pointers, context.device)


def _on_cpu(logits: torch.Tensor) -> bool:
    """Whether the CPU kernels take the call (a seam: the emulator tests send host tensors
    down the CUDA path)."""
    return logits.is_cpu


def _check_device(device: torch.device) -> None:
    if not cuda.runs_on(device):
        raise ValueError(f"the compiled kernels run on CPU tensors and, in a CUDA build, CUDA "
                         f"tensors; got tensors on {device}")


def run_sample(logits: torch.Tensor, args: _C.BatchArgs, edits: Optional[_C.EditArgs] = None,
               logprobs: Optional[LogprobOutputs] = None, return_valid: bool = False,
               tokens: Optional[torch.Tensor] = None):
    """One fused sample call on the logits' device (edits: Edits.kernel_args() or None; the
    tensors it and the logprobs point into must outlive the call). tokens: the int64 [B] output
    when the caller made it (it may hold the rows' seeds: each row reads its seed before its
    token is written). Returns logprobs.output(...) with logprobs, a SampleOutput with
    return_valid, else the tokens, raising ValueError for rows without a valid token (except on
    CUDA during graph capture, where checking would wait for the GPU: the caller checks the -1
    tokens)."""
    batch = args.batch
    lp_args = None if logprobs is None else logprobs.args
    want_valid = return_valid or logprobs is not None
    # At B = 1 this is part of every decode step: no device object on the CPU path.
    on_cpu = _on_cpu(logits)
    device = _CPU if on_cpu else logits.device
    if not on_cpu:
        _check_device(device)
    if tokens is None:
        tokens = (torch.from_numpy(np.empty(batch, dtype=np.int64)) if on_cpu
                  else torch.empty(batch, dtype=torch.int64, device=device))
    valid = torch.empty(batch, dtype=torch.bool, device=device) if want_valid else None
    args.out_valid = 0 if valid is None else valid.data_ptr()
    args.out_tokens = tokens.data_ptr()
    if on_cpu:
        invalid = _C.cpu_sample(args, edits, lp_args)
    else:
        cuda.sample(args, edits, lp_args, device)
        # Checking waits for the GPU, which a captured graph cannot do.
        invalid = not want_valid and not cuda.device_values_trusted() and not bool((tokens >= 0).all())
    if logprobs is not None:
        return logprobs.output(tokens, valid)
    if valid is not None:
        return SampleOutput(tokens, valid)
    if invalid:
        raise ValueError(invalid_rows_message(tokens >= 0))
    return tokens


def run_process(logits: torch.Tensor, args: _C.BatchArgs,
                edits: Optional[_C.EditArgs] = None) -> torch.Tensor:
    """One fused process call on the logits' device: a new float32 [B, V] tensor."""
    out = torch.empty(tuple(logits.shape), dtype=torch.float32, device=logits.device)
    args.out_logits = out.data_ptr()
    args.out_row_stride = out.stride(0)
    if _on_cpu(logits):
        _C.cpu_process(args, edits)
    else:
        _check_device(logits.device)
        cuda.process(args, edits, logits.device)
    return out
