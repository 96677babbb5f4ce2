"""Assisted generation (speculative decoding with a draft model) inside fastsample.generate:
per sequence, the draft model proposes up to k tokens, sampled from its logits under the
request's parameters; one target forward scores them all; Sampler.verify keeps a prefix and
emits one more token, distributed as plain sampling's. Sequences run one at a time, as
transformers' assisted generation does, with both models' KV caches cut back after each
verification."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator, List, Optional, Tuple

import torch

from ..functional.sampling import process_logits, sample
from ..requests import arguments, decoding
from ..requests.sampling_batch import SamplingBatch
from ..requests.sampling_params import SamplingParams
from .model_io import crop_cache, model_step, output_cache, output_vocab_size
from .sampler import Sampler, StepOutput, VerifyStepOutput

# The draft model samples from its own Philox stream: the request's seed plus this (mod 2^63).
DRAFT_SEED_SHIFT = 0x3C6EF372FE94F82A


@dataclass
class Passes:
    """Forward passes of an assisted generation, for tokens-per-target-pass figures."""

    target: int = 0
    draft: int = 0
    tokens: int = 0


def check_draft_model(model: Any, draft_model: Any, num_draft_tokens: Any,
                      plist: List[SamplingParams]) -> None:
    """Raises TypeError / ValueError unless generate can run these requests with this draft
    model (same vocabulary; sampling requests without beams, contrastive search, mirostat or a
    grammar)."""
    if not arguments.is_int(num_draft_tokens) or isinstance(num_draft_tokens, bool):
        raise TypeError(f"num_draft_tokens must be an int, got "
                        f"{type(num_draft_tokens).__name__} {num_draft_tokens!r}")
    if not 1 <= num_draft_tokens <= 64:
        raise ValueError(f"num_draft_tokens={num_draft_tokens} is out of range; allowed: 1 to 64")
    target_vocab, draft_vocab = output_vocab_size(model), output_vocab_size(draft_model)
    if target_vocab != draft_vocab:
        raise ValueError(f"draft_model's vocabulary ({draft_vocab} logits) differs from the "
                         f"model's ({target_vocab}): assisted generation needs one tokenizer "
                         f"and one vocabulary")
    for i, p in enumerate(plist):
        for name, on in (("num_beams", p.num_beams > 1), ("penalty_alpha", p.penalty_alpha > 0),
                         ("mirostat", bool(p.mirostat)),
                         ("structured_output", p.structured_output is not None)):
            if on:
                raise ValueError(f"params[{i}].{name}: generate(draft_model=...) verifies "
                                 f"sampled or greedy drafts; run {name} without a draft model")


def draft_seed(seed: int) -> int:
    return (seed + DRAFT_SEED_SHIFT) % decoding.SEED_SPAN


def _as_steps(res: VerifyStepOutput) -> List[StepOutput]:
    """A verification's tokens as one StepOutput each (finished on the last)."""
    out = []
    last = len(res.tokens) - 1
    for k, token in enumerate(res.tokens):
        step = StepOutput(res.request_id, token, res.finished and k == last,
                          res.finish_reason if k == last else None, res.texts[k])
        if res.logprobs is not None:
            step.logprob, step.top_ids, step.top_logprobs = (
                res.logprobs[k], res.top_ids[k], res.top_logprobs[k])
        out.append(step)
    return out


class _Drafter:
    """The draft model's side of one sequence: its KV cache and sampling state."""

    def __init__(self, model: Any, params: SamplingParams, prompt: List[int], eos: Any,
                 vocab: int, passes: Passes):
        self.model, self.prompt, self.eos, self.vocab = model, prompt, eos, vocab
        # The request's own values (distribution-valued fields drawn as the Sampler draws
        # them, from the request's seed), sampled from the draft's stream.
        self.params = replace(params.resolve(params.seed), seed=draft_seed(params.seed),
                              logprobs=None, prompt_logprobs=None, max_tokens=None)
        self.past, self.cached, self.passes = None, 0, passes

    def propose(self, seq: List[int], output: List[int], count: int
                ) -> Tuple[List[int], Optional[torch.Tensor]]:
        """Up to `count` drafts after seq (the prompt then `output`), each drawn from the draft
        model's processed distribution q, and q [count, V] (float32)."""
        device = self.model.device
        batch = SamplingBatch([], device, eos_token_ids=self.eos, vocab_size=self.vocab)
        batch.append([self.params], prompt_token_ids=[self.prompt], output_token_ids=[output])
        drafts, q = [], []
        for _ in range(count):
            ids = seq + drafts
            out = model_step(self.model, torch.tensor([ids[self.cached:]], device=device),
                             torch.ones((1, len(ids)), dtype=torch.int64, device=device),
                             self.past)
            self.passes.draft += 1
            self.past, self.cached = output_cache(out), len(ids)
            logits = out.logits[:, -1, :].float()
            token = sample(logits, batch=batch)
            q.append(torch.softmax(process_logits(logits, batch=batch), dim=1)[0])
            batch.advance(token)
            drafts.append(int(token[0]))
        return drafts, (torch.stack(q).nan_to_num(nan=0.0) if q else None)

    def keep(self, length: int) -> None:
        """Drops the cache beyond the first `length` tokens (what verification kept)."""
        if self.past is not None and self.cached > length:
            self.past = crop_cache(self.past, length)
            self.cached = length


def assisted_sequence(model: Any, draft_model: Any, prompt: List[int], params: SamplingParams,
                      k: int, tokenizer: Any, eos: Any, passes: Passes
                      ) -> Iterator[StepOutput]:
    """One sequence's StepOutputs: its first token from a target prefill, then speculative
    steps of up to k drafts each until the request finishes. params.seed is set."""
    device = model.device
    vocab = output_vocab_size(model)
    sampler = Sampler(vocab, device=device, tokenizer=tokenizer, eos_token_id=eos)
    sampler.add(0, params, prompt)
    drafter = _Drafter(draft_model, params, prompt, sampler.eos_token_ids, vocab, passes)
    out = model_step(model, torch.tensor([prompt], device=device),
                     torch.ones((1, len(prompt)), dtype=torch.int64, device=device), None)
    passes.target += 1
    past = output_cache(out)
    wanted = {0: out.logits[0].float()} if sampler.prompt_logits_wanted else {}
    first = sampler.step(out.logits[:, -1, :].float().contiguous(), wanted)[0]
    output = [first.token]
    passes.tokens += 1
    yield first
    finished = first.finished
    while not finished:
        seq = prompt + output
        count = min(k, params.max_tokens - len(output) - 1)
        drafts, q = drafter.propose(seq, output, count)
        ids = seq + drafts
        out = model_step(model, torch.tensor([ids[len(seq) - 1:]], device=device),
                         torch.ones((1, len(ids)), dtype=torch.int64, device=device), past)
        passes.target += 1
        target = out.logits[:, -(count + 1):, :].float()
        res = sampler.verify(target, torch.tensor([drafts], dtype=torch.int64,
                                                  device=device).reshape(1, count),
                             None if q is None else q[None])[0]
        output += res.tokens
        passes.tokens += len(res.tokens)
        # Both caches keep what verification kept: the context and the accepted drafts.
        kept = len(prompt) + len(output) - 1
        past = crop_cache(output_cache(out), kept)
        drafter.keep(kept)
        finished = res.finished
        yield from _as_steps(res)

