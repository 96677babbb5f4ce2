"""fastsample.sample / process_logits as torch custom ops, so torch.compile traces a decode step
through them without a graph break. Eager calls never come here (no dispatcher overhead):
sample() switches to these ops only while torch.compile is tracing."""
from __future__ import annotations

from typing import Optional

import torch


def _arg(rows: Optional[torch.Tensor], scalar):
    return rows if rows is not None else scalar


@torch.library.custom_op("fastsample::sample", mutates_args=())
def sample_op(logits: torch.Tensor, temperature: Optional[torch.Tensor], temperature_s: float,
              top_k: Optional[torch.Tensor], top_k_s: int, top_p: Optional[torch.Tensor],
              top_p_s: float, min_p: Optional[torch.Tensor], min_p_s: float,
              seed: Optional[torch.Tensor], seed_s: int, offset: Optional[torch.Tensor],
              offset_s: int) -> torch.Tensor:
    """Per-row tensors win over the scalars beside them; seed_s -1 = random rows."""
    from ..functional.sampling import sample
    return sample(logits, temperature=_arg(temperature, temperature_s), top_k=_arg(top_k, top_k_s),
                  top_p=_arg(top_p, top_p_s), min_p=_arg(min_p, min_p_s),
                  seed=_arg(seed, seed_s), offset=_arg(offset, offset_s), return_valid=True).tokens


@sample_op.register_fake
def _sample_fake(logits, temperature, temperature_s, top_k, top_k_s, top_p, top_p_s, min_p,
                 min_p_s, seed, seed_s, offset, offset_s):
    return logits.new_empty((logits.shape[0],), dtype=torch.int64)


@torch.library.custom_op("fastsample::process_logits", mutates_args=())
def process_op(logits: torch.Tensor, temperature: Optional[torch.Tensor], temperature_s: float,
               top_k: Optional[torch.Tensor], top_k_s: int, top_p: Optional[torch.Tensor],
               top_p_s: float, min_p: Optional[torch.Tensor], min_p_s: float) -> torch.Tensor:
    from ..functional.sampling import process_logits
    return process_logits(logits, temperature=_arg(temperature, temperature_s),
                          top_k=_arg(top_k, top_k_s), top_p=_arg(top_p, top_p_s),
                          min_p=_arg(min_p, min_p_s))


@process_op.register_fake
def _process_fake(logits, temperature, temperature_s, top_k, top_k_s, top_p, top_p_s, min_p,
                  min_p_s):
    return logits.new_empty(logits.shape, dtype=torch.float32)


def split(v, default):
    """(tensor or None, scalar) for an op argument: a plain number goes in the scalar slot."""
    if isinstance(v, torch.Tensor):
        return v, default
    if v is None:
        return None, default
    if isinstance(v, (list, tuple)):
        return torch.tensor(v), default
    return None, v


def compiled_sample(logits, temperature, top_k, top_p, min_p, seed, offset):
    return sample_op(logits, *split(temperature, 1.0), *split(top_k, 0), *split(top_p, 1.0),
                     *split(min_p, 0.0), *split(-1 if seed is None else seed, -1),
                     *split(0 if offset is None else offset, 0))


def compiled_process(logits, temperature, top_k, top_p, min_p):
    return process_op(logits, *split(temperature, 1.0), *split(top_k, 0), *split(top_p, 1.0),
                      *split(min_p, 0.0))
