"""fastsample: fused LLM sampling kernels (temperature, top-k, top-p, min-p, draw).

    import fastsample
    tokens = fastsample.sample(logits, temperature=0.7, top_k=50, top_p=0.9, seed=0)

See docs/semantics.md for the exact contract every backend computes.
"""
from . import reference
from ._build_info import build_info, get_num_threads, set_num_threads
from ._output import SampleOutput
from ._sampling import process_logits, sample

__version__ = build_info()["version"]

__all__ = [
    "SampleOutput",
    "build_info",
    "get_num_threads",
    "process_logits",
    "reference",
    "sample",
    "set_num_threads",
]
