"""The grammar stage (structured outputs): a request's `structured_output` (guided JSON, regex,
choice, grammar) compiled once per distinct source for the tokenizer, and, per step, the
next-token bitmask of every constrained row, which the fused kernels apply as `token_bitmask`.

- spec:    reading `SamplingParams.structured_output` into one grammar (kind, source)
- matchers: GrammarRows, the per-row matchers of a batch (xgrammar), their bitmask and tokens
"""
from .matchers import GrammarRows
from .spec import GrammarSpec, grammar_spec

__all__ = ["GrammarRows", "GrammarSpec", "grammar_spec"]
