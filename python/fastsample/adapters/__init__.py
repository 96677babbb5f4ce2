"""Adapters from other systems' parameter styles to fastsample.SamplingParams."""
from .bedrock import from_bedrock
from .hf import from_hf
from .llama_stack import from_llama_stack
from .openai import from_openai

__all__ = ["from_bedrock", "from_hf", "from_llama_stack", "from_openai"]
