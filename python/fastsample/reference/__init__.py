"""The reference layer: the sampling contract (docs/semantics.md) in plain torch, and the checks
built on it.

- contract:      sample / process_logits / keep_set / logprobs_of, read line by line from the
                 contract; the oracle every backend is tested against
- philox:        the counter-based generator in NumPy (csrc/include/fastsample/philox.h's copy)
- verify:        comparing a backend's output with the contract under its tolerances
- selftest, selftest_cuda: `python -m fastsample selftest`
- speculative:   fastsample.verify's rule, one node at a time
- contrastive:   transformers 4.x's contrastive search, one prompt at a time (the oracle of
                 fastsample's batched search and the peer of its benchmark)
"""
from . import contrastive, speculative
from .contract import (FLT_MAX, apply_edits, edits_of, keep_set, logprobs_of, process_logits,
                       sample, sanitize)

__all__ = ["FLT_MAX", "apply_edits", "contrastive", "edits_of", "keep_set", "logprobs_of", "process_logits",
           "sample", "sanitize", "speculative"]
