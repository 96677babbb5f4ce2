"""What fastsample.generate returns: per prompt its completions, and stream events."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from ..functional.scoring import PromptLogprobs
from .sampler import StepOutput


@dataclass
class Completion:
    """One generated sequence: token_ids (generated only, a final EOS/stop id included), text
    (with a tokenizer; stop strings and a final EOS/stop token excluded), finish_reason
    ("length" | "eos" | "stop"), per token (logprob, top_ids, top_logprobs) when asked, and
    score: beam search's length-penalized score, best_of's mean logprob per token (else
    None)."""

    token_ids: List[int] = field(default_factory=list)
    text: Optional[str] = None
    finish_reason: Optional[str] = None
    logprobs: Optional[List[Tuple[float, List[int], List[float]]]] = None
    score: Optional[float] = None


@dataclass
class GenerationResult:
    """One prompt's generation: its `completions` (n of them: independent samples in seed
    order, best_of's best first, beam search's best beams first) and prompt_logprobs
    (fastsample.PromptLogprobs over the prompt's tokens after the first, raw) when asked.
    token_ids, text, finish_reason, logprobs and score are the first completion's."""

    completions: List[Completion] = field(default_factory=lambda: [Completion()])
    prompt_logprobs: Optional[PromptLogprobs] = None

    token_ids = property(lambda self: self.completions[0].token_ids)
    text = property(lambda self: self.completions[0].text)
    finish_reason = property(lambda self: self.completions[0].finish_reason)
    logprobs = property(lambda self: self.completions[0].logprobs)
    score = property(lambda self: self.completions[0].score)


@dataclass
class StreamEvent:
    """What generate(stream=True) yields: the prompt's index, which of its n sequences, and
    the step output."""

    index: int
    output: StepOutput
    sequence: int = 0
