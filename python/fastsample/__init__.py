"""fastsample: fused LLM sampling kernels (temperature, top-k, top-p, min-p, draw).

    import fastsample
    tokens = fastsample.sample(logits, temperature=0.7, top_k=50, top_p=0.9, seed=0)

See docs/semantics.md for the exact contract every backend computes.
"""
try:
    import torch  # noqa: F401  (fastsample passes torch tensors to its kernels)
except ImportError as e:
    raise ImportError(
        "fastsample needs PyTorch, which is not installed here: install torch first (the CPU "
        "build: pip install torch --index-url https://download.pytorch.org/whl/cpu; a CUDA "
        "build: see pytorch.org), then import fastsample") from e

from . import _C, adapters, reference
from .kernel.build_info import build_info, get_num_threads, set_num_threads
from .requests.distributions import Manual, Uniform
from .kernel.sample_output import SampleOutput, VerifyOutput
from .functional.scoring import PromptLogprobs, prompt_logprobs
from .functional.sampling import process_logits, sample
from .requests.sampling_batch import BatchFlags, SamplingBatch
from .requests.sampling_params import SamplingParams
from .decode.sampler import (Sampler, StepOutput, StepOutputs, VerifyStepOutput,
                             VerifyStepOutputs)
from .functional.contrastive import contrastive_scores
from .functional.speculative import verify
from .decode.generate import GenerationResult, StreamEvent, generate
from .decode.results import Completion
from .adapters import from_bedrock, from_hf, from_llama_stack, from_openai

__version__ = str(_C.version)

__all__ = [
    "BatchFlags",
    "Completion",
    "contrastive_scores",
    "Manual",
    "SampleOutput",
    "SamplingBatch",
    "SamplingParams",
    "Sampler",
    "GenerationResult",
    "StreamEvent",
    "generate",
    "StepOutput",
    "StepOutputs",
    "Uniform",
    "adapters",
    "from_bedrock",
    "from_hf",
    "from_llama_stack",
    "from_openai",
    "build_info",
    "get_num_threads",
    "process_logits",
    "prompt_logprobs",
    "PromptLogprobs",
    "reference",
    "sample",
    "set_num_threads",
    "verify",
    "VerifyOutput",
    "VerifyStepOutput",
    "VerifyStepOutputs",
]
