"""fastsample: fused LLM sampling kernels (temperature, top-k, top-p, min-p, draw).

    import fastsample
    tokens = fastsample.sample(logits, temperature=0.7, top_k=50, top_p=0.9, seed=0)

See docs/semantics.md for the exact contract every backend computes.
"""
from . import _C, adapters, reference
from ._build_info import build_info, get_num_threads, set_num_threads
from ._distributions import Manual, Uniform
from ._output import SampleOutput
from ._prompt_logprobs import PromptLogprobs, prompt_logprobs
from ._sampling import process_logits, sample
from ._sampling_batch import BatchFlags, SamplingBatch
from ._sampling_params import SamplingParams
from ._sampler import Sampler, StepOutput, StepOutputs
from ._generate import GenerationResult, StreamEvent, generate
from .adapters import from_bedrock, from_hf, from_llama_stack, from_openai

__version__ = str(_C.version)

__all__ = [
    "BatchFlags",
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
]
