"""fastsample.generate: a complete decode loop for transformers causal LMs, sampling with a
Sampler (one fused call per step)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..adapters.hf import with_prompt_length
from ..requests import decoding
from ..requests.arguments import draw_seeds
from .assisted import Passes, assisted_sequence, check_draft_model
from .beam_search import beam_search
from .contrastive import contrastive_search
from .model_io import (left_padded, model_step, output_cache, output_vocab_size,
                       pad_token_id, select_cache_rows)
from .results import Completion, GenerationResult, StreamEvent
from .sampler import Sampler, StepOutput
from ..requests.sampling_params import SamplingParams, check_params

# What max_tokens means when a request leaves it unset (vLLM's default).
DEFAULT_MAX_TOKENS = 16


def _encode(prompts: Any, tokenizer: Any) -> List[List[int]]:
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.is_floating_point():
            raise ValueError(f"prompts as a tensor must be int64 [N, L], got {tuple(prompts.shape)} {prompts.dtype}")
        return [row.tolist() for row in prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise TypeError("prompts must be a non-empty list of strings (with a tokenizer) or of "
                        "token-id lists, or a LongTensor [N, L]")
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            if tokenizer is None:
                raise ValueError(f"prompts[{i}] is a string: pass tokenizer=... to encode it")
            out.append(list(tokenizer(p)["input_ids"]))
        elif isinstance(p, (list, tuple)) and all(isinstance(t, int) for t in p):
            out.append(list(p))
        else:
            raise TypeError(f"prompts[{i}] must be a string or a list of token ids, got {type(p).__name__}")
        if not out[-1]:
            raise ValueError(f"prompts[{i}] is empty")
    return out


def decode_steps(model: Any, input_ids: torch.Tensor, mask: torch.Tensor, sampler: Sampler,
                 pad_id: int, prompt_of: Optional[Sequence[int]] = None,
                 stop: Optional[Callable[[List[int]], Sequence[int]]] = None
                 ) -> Iterator[Tuple[int, StepOutput]]:
    """Runs the model with a KV cache over left-padded prompts; yields (row, step output) for
    every sampled token. Sampler request i is row i, the continuation of prompt prompt_of[i]
    (default: prompt i): the prefill runs once per prompt and its cache and logits are copied
    into the rows. Finished rows keep being fed a pad token (their outputs are ignored), so the
    cache is never re-indexed after the prefill. `stop`, when given, is called after each step
    (its tokens yielded) with the rows still running and returns those to end there (a caller's
    stopping criteria); their requests leave the sampler."""
    device = model.device
    input_ids, mask = input_ids.to(device), mask.to(device)
    prompt_of = list(range(input_ids.shape[0])) if prompt_of is None else list(prompt_of)
    rows = len(prompt_of)
    active = list(range(rows))  # row of each sampler request, in the sampler's order
    out = model_step(model, input_ids, mask, None)
    # The prefill's logits over each real prompt token, for requests scoring their prompt.
    width = out.logits.shape[1]
    prompt_logits = {row: out.logits[prompt_of[row], width - int(mask[prompt_of[row]].sum()):,
                                     :].float()
                     for row in sampler.prompt_logits_wanted}
    past, logits = output_cache(out), out.logits[:, -1, :]
    if prompt_of != list(range(input_ids.shape[0])):
        index = torch.tensor(prompt_of, dtype=torch.int64, device=device)
        past = select_cache_rows(past, index)
        logits, mask = logits.index_select(0, index), mask.index_select(0, index)
    while True:
        picked = logits.index_select(0, torch.tensor(active, device=logits.device))
        results = sampler.step(picked.float().contiguous(), prompt_logits)
        prompt_logits = {}
        next_tokens = torch.full((rows,), pad_id, dtype=torch.int64)
        for row, res in zip(active, results):
            next_tokens[row] = res.token
            yield row, res
        active = [row for row, res in zip(active, results) if not res.finished]
        if stop is not None and active:
            ended = set(stop(active))
            for row in ended:
                sampler.remove(row)
            active = [row for row in active if row not in ended]
        if not active:
            return
        mask = torch.cat([mask, torch.ones((rows, 1), dtype=mask.dtype, device=device)], dim=1)
        out = model_step(model, next_tokens.to(device)[:, None], mask, past)
        past, logits = output_cache(out), out.logits[:, -1, :]


def generate(model: Any, prompts: Any, params: Union[SamplingParams, Sequence[SamplingParams]],
             *, tokenizer: Any = None, stream: bool = False,
             generator: Optional[torch.Generator] = None, draft_model: Any = None,
             num_draft_tokens: int = 4
             ) -> Union[List[GenerationResult], Iterator[StreamEvent]]:
    """Generates for each prompt with any transformers causal LM, sampling with fastsample.

    Args:
        model: a transformers causal LM (forward takes input_ids, attention_mask, position_ids,
            cache or past_key_values, use_cache and returns logits).
        prompts: list of strings (needs `tokenizer`), list of token-id lists, or int64 [N, L].
        params: one SamplingParams for every prompt, or one per prompt. max_tokens None means
            16 (vLLM's default); EOS ids default to the model's generation_config, then the
            tokenizer's. n / best_of: that many sequences per prompt, from one prefill;
            num_beams > 1: beam search; penalty_alpha > 0: contrastive search
            (docs/decode_loop.md).
        tokenizer: encodes string prompts, decodes `text`, enables stop strings.
        stream: yield a StreamEvent per sampled token instead of returning the results (not
            with beam or contrastive search, or best_of > n).
        generator: seeds requests without a seed.
        draft_model: a smaller causal LM with the same vocabulary (None: off): assisted
            generation. Each sequence's first token comes from the model's prefill; then the
            draft model proposes up to num_draft_tokens tokens, drawn from its logits under
            the request's parameters (its own seed: the request's + DRAFT_SEED_SHIFT), the
            model scores them in one forward, and fastsample.verify keeps a prefix and emits
            one more token: the outputs are distributed as plain sampling's, in fewer forward
            passes of the model. Sequences run one at a time, as transformers' assisted
            generation; not with beam or contrastive search, mirostat or structured outputs.
        num_draft_tokens: k, drafts per step (1 to 64), default 4.

    Returns:
        one GenerationResult per prompt, in order (or, with stream=True, an iterator).
    """
    ids = _encode(prompts, tokenizer)
    if isinstance(params, Mapping):
        check_params("params", params)
    plist = [params] * len(ids) if isinstance(params, SamplingParams) else list(params)
    if len(plist) != len(ids):
        raise ValueError(f"params: expected one SamplingParams or {len(ids)} (one per prompt), got {len(plist)}")
    for i, p in enumerate(plist):
        check_params(f"params[{i}]", p)
        if stream and (p.num_beams > 1 or p.penalty_alpha > 0 or decoding.ranks_samples(p)):
            name = "num_beams" if p.num_beams > 1 else (
                "penalty_alpha" if p.penalty_alpha > 0 else "best_of")
            raise ValueError(f"params[{i}]: stream=True cannot run {name}: generate without "
                             f"stream (beams and best_of choose their sequences at the end; "
                             f"contrastive search runs as one search)")
    # A generation config's max_length / min_length count the prompt: convert them first.
    plist = [with_prompt_length(p, len(prompt)) for p, prompt in zip(plist, ids)]
    plist = [p if p.max_tokens is not None else _with_max_tokens(p, DEFAULT_MAX_TOKENS)
             for p in plist]
    if draft_model is not None:
        check_draft_model(model, draft_model, num_draft_tokens, plist)
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None and tokenizer is not None:
        eos = tokenizer.eos_token_id
    pad_id = pad_token_id(model, tokenizer, eos)
    searches = {"beam": [i for i, p in enumerate(plist) if p.num_beams > 1],
                "contrastive": [i for i, p in enumerate(plist) if p.penalty_alpha > 0]}
    if any(searches.values()):
        results: List[Optional[GenerationResult]] = [None] * len(ids)
        eos_ids = _eos_ids(eos)
        for kind, rows in searches.items():
            if not rows:
                continue
            run = beam_search if kind == "beam" else contrastive_search
            for i, res in zip(rows, run(model, [ids[i] for i in rows], [plist[i] for i in rows],
                                        eos_token_ids=eos_ids, pad_id=pad_id,
                                        tokenizer=tokenizer)):
                results[i] = res
        rest = [i for i in range(len(ids)) if results[i] is None]
        if rest:
            for i, res in zip(rest, _sample(model, [ids[i] for i in rest],
                                            [plist[i] for i in rest], tokenizer, eos, pad_id,
                                            generator, None)):
                results[i] = res
        return results
    draft = None if draft_model is None else (draft_model, num_draft_tokens)
    if stream:
        return _stream(model, ids, plist, tokenizer, eos, pad_id, generator, draft)
    return _sample(model, ids, plist, tokenizer, eos, pad_id, generator, draft)


def _eos_ids(eos: Any) -> Tuple[int, ...]:
    """The model's EOS ids (an int, a list or None) as a tuple."""
    if eos is None:
        return ()
    return (int(eos),) if isinstance(eos, int) else tuple(int(t) for t in eos)


def _sequence_rows(plist: Sequence[SamplingParams]) -> List[Tuple[int, int, SamplingParams]]:
    """(prompt, sequence, params) of every row: best_of (else n) per prompt, sequence j seeded
    seed + j; best_of > n rows compute their tokens' logprobs (the ranking reads them); only
    sequence 0 scores the prompt."""
    rows = []
    for i, p in enumerate(plist):
        ranked = decoding.ranks_samples(p)
        for j in range(p.best_of if ranked else p.n):
            rows.append((i, j, replace(
                p, n=1, best_of=None, seed=decoding.sequence_seed(p.seed, j),
                logprobs=0 if ranked and p.logprobs is None else p.logprobs,
                prompt_logprobs=p.prompt_logprobs if j == 0 else None)))
    return rows


def _run_rows(model: Any, ids: List[List[int]], plist: Sequence[SamplingParams], tokenizer: Any,
              eos: Any, pad_id: int, generator: Optional[torch.Generator],
              draft: Optional[Tuple[Any, int]]):
    """(rows, the decode loop's (row, step output) iterator) over every sequence row; with
    `draft` (draft model, k), assisted generation, one row at a time."""
    rows = _sequence_rows(plist)
    if draft is not None:
        return rows, _assisted_rows(model, ids, rows, tokenizer, eos, generator, *draft)
    sampler = Sampler(output_vocab_size(model), device=model.device, tokenizer=tokenizer,
                      eos_token_id=eos, generator=generator)
    for r, (i, _, p) in enumerate(rows):
        sampler.add(r, p, ids[i])
    input_ids, mask = left_padded(ids, pad_id)
    return rows, decode_steps(model, input_ids, mask, sampler, pad_id, [i for i, _, _ in rows])


def _assisted_rows(model, ids, rows, tokenizer, eos, generator, draft_model, k,
                   passes: Optional[Passes] = None) -> Iterator[Tuple[int, StepOutput]]:
    """Each sequence row's steps in turn, from assisted_sequence (seedless rows get a seed
    from `generator` first: the draft model's stream derives from it)."""
    passes = Passes() if passes is None else passes
    for r, (i, _, p) in enumerate(rows):
        if p.seed is None:
            p = replace(p, seed=int(draw_seeds(torch.empty(1, dtype=torch.int64), generator)[0]))
        for step in assisted_sequence(model, draft_model, ids[i], p, k, tokenizer, eos, passes):
            yield r, step


def _stream(model, ids, plist, tokenizer, eos, pad_id, generator, draft
            ) -> Iterator[StreamEvent]:
    rows, steps = _run_rows(model, ids, plist, tokenizer, eos, pad_id, generator, draft)
    return (StreamEvent(rows[r][0], res, rows[r][1]) for r, res in steps)


def _sample(model, ids, plist, tokenizer, eos, pad_id, generator, draft
            ) -> List[GenerationResult]:
    rows, steps = _run_rows(model, ids, plist, tokenizer, eos, pad_id, generator, draft)
    done = [Completion(logprobs=[] if p.logprobs is not None else None) for _, _, p in rows]
    results = [GenerationResult([]) for _ in plist]
    for r, res in steps:
        c = done[r]
        c.token_ids.append(res.token)
        c.text, c.finish_reason = res.text, res.finish_reason
        if res.prompt_logprobs is not None:
            results[rows[r][0]].prompt_logprobs = res.prompt_logprobs
        if c.logprobs is not None:
            c.logprobs.append((res.logprob, res.top_ids, res.top_logprobs))
    for (i, _, _), c in zip(rows, done):
        results[i].completions.append(c)
    for res, p in zip(results, plist):
        if decoding.ranks_samples(p):
            res.completions = _best(res.completions, p)
    return results


def _best(completions: List[Completion], p: SamplingParams) -> List[Completion]:
    """best_of's choice: the n completions with the highest mean logprob per token (OpenAI's
    rule; the logprob of the request's logprobs_mode), best first, the earlier sequence first
    among equals; logprobs dropped when the request did not ask for them."""
    for c in completions:
        c.score = sum(lp for lp, _, _ in c.logprobs) / len(c.logprobs)
        if p.logprobs is None:
            c.logprobs = None
    order = sorted(range(len(completions)), key=lambda j: -completions[j].score)
    return [completions[j] for j in order[:p.n]]


def _with_max_tokens(p: SamplingParams, n: int) -> SamplingParams:
    return replace(p, max_tokens=max(n, p.min_tokens))
