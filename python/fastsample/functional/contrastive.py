"""fastsample.contrastive_scores: contrastive search's ranking of a step's candidates (Su et
al. 2022, as transformers 4.x computed it): (1 - alpha) x p - alpha x the candidate's largest
cosine similarity to the context's hidden states, in one fused kernel over k candidates x
context (csrc/include/fastsample/contrastive.h)."""
from __future__ import annotations

from typing import Union

import torch

from .. import reference
from ..kernel import cuda, launch
from ..kernel.param_table import Range
from ..requests import arguments
from ..requests.decoding import MAX_CANDIDATES, PENALTY_ALPHA

CANDIDATES = Range(f"an integer in [1, {MAX_CANDIDATES}]", 1, MAX_CANDIDATES, integer=True)


def contrastive_scores(context: torch.Tensor, context_mask: torch.Tensor,
                       candidates: torch.Tensor, probs: torch.Tensor,
                       penalty_alpha: Union[float, torch.Tensor]) -> torch.Tensor:
    """Each candidate's contrastive score.

    Args:
        context: [B, L, D] float32, float16 or bfloat16: the last layer's hidden states of
            every position so far (prompt and generated tokens); any strides.
        context_mask: [B, L]: nonzero where a position counts (0: left padding, never the
            most similar).
        candidates: [B, k, D], context's dtype, k in [1, 64]: each candidate token's hidden
            state (the model fed the candidate).
        probs: [B, k] float: each candidate's probability (0 for a candidate the row does not
            keep: its score is -inf).
        penalty_alpha: a float in [0, 1], or one per row ([B]).

    Returns:
        float32 [B, k] on the inputs' device: (1 - alpha) p - alpha max_s cos(context[s],
        candidate), cos = dot / (|context[s]| |candidate|) in float32 whatever the dtype (a
        cosine that is not finite, a zero vector's, counts as 1); (1 - alpha) and alpha are rounded to float32 from double,
        as transformers' Python floats are. The chosen candidate is the argmax (the first
        among equals). CPU and CUDA results are equal bit for bit; devices without compiled
        kernels run fastsample.reference.contrastive_scores.
    """
    for name, t in (("context", context), ("context_mask", context_mask),
                    ("candidates", candidates), ("probs", probs)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if context.dim() != 3 or candidates.dim() != 3 or context.shape[0] != candidates.shape[0] \
            or context.shape[2] != candidates.shape[2] or context.shape[1] < 1 \
            or context.shape[2] < 1:
        raise ValueError(f"context must be [B, L, D] and candidates [B, k, D] with L, D >= 1, "
                         f"got {tuple(context.shape)} and {tuple(candidates.shape)}")
    B, k = candidates.shape[:2]
    if tuple(context_mask.shape) != tuple(context.shape[:2]) or tuple(probs.shape) != (B, k):
        raise ValueError(f"context_mask must be [B, L] = {tuple(context.shape[:2])} and probs "
                         f"[B, k] = {(B, k)}, got {tuple(context_mask.shape)} and "
                         f"{tuple(probs.shape)}")
    arguments.check_scalar("k (candidates.shape[1])", k, CANDIDATES)
    if context.dtype not in arguments.FLOAT_DTYPES or candidates.dtype != context.dtype:
        raise TypeError(f"context and candidates must share one of float32, float16, bfloat16; "
                        f"got {context.dtype} and {candidates.dtype}")
    device = context.device
    if any(t.device != device for t in (context_mask, candidates, probs)):
        raise ValueError(f"context, context_mask, candidates and probs must be on one device, "
                         f"got {context.device}, {context_mask.device}, {candidates.device}, "
                         f"{probs.device}")
    alpha = _alpha(penalty_alpha, B, device)
    if B == 0:
        return torch.empty((0, k), dtype=torch.float32, device=device)
    if device.type == "cuda" and not cuda.runs_on(device):
        return reference.contrastive.contrastive_scores(context, context_mask, candidates, probs,
                                                        alpha)
    out = torch.empty((B, k), dtype=torch.float32, device=device)
    launch.run_contrastive(_last_contiguous(context), _last_contiguous(candidates),
                           (context_mask != 0).to(torch.uint8).contiguous(),
                           probs.float().contiguous(), (1.0 - alpha).float(), alpha.float(), out)
    return out


def _alpha(penalty_alpha: Union[float, torch.Tensor], rows: int,
           device: torch.device) -> torch.Tensor:
    """penalty_alpha as float64 [rows] on `device`, every value in [0, 1]."""
    alpha = torch.as_tensor(penalty_alpha, dtype=torch.float64).to(device)
    if alpha.dim() == 0:
        arguments.check_scalar("penalty_alpha", float(alpha), PENALTY_ALPHA)
        return alpha.expand(rows).contiguous()
    if alpha.shape != (rows,) or not bool(((alpha >= 0) & (alpha <= 1)).all()):
        raise ValueError(f"penalty_alpha must be a float in [0, 1] or one per row ([{rows}]) in "
                         f"that range, got shape {tuple(alpha.shape)}")
    return alpha.contiguous()


def _last_contiguous(t: torch.Tensor) -> torch.Tensor:
    return t if t.stride(2) == 1 or t.shape[2] == 1 else t.contiguous()
