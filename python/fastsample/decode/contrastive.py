"""Contrastive search (Su et al. 2022) for fastsample.generate and
fastsample.transformers.contrastive_search_loop, as transformers 4.x ran it: each step the
top_k candidates of the processed distribution are fed to the model together (the KV cache
repeated top_k times, B x top_k rows in one forward), each scored
(1 - alpha) p - alpha x its largest cosine similarity to the context's last hidden states
(fastsample.contrastive_scores), and the best one is kept with its cache row, its hidden state
(which joins the context) and its logits (the next step's)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch

from ..functional.contrastive import contrastive_scores
from ..requests.sampling_params import SamplingParams
from .candidates import CandidateRows
from .model_io import left_padded, model_step, output_cache, select_cache_rows
from .results import Completion, GenerationResult


def contrastive_search(model: Any, prompts: Sequence[Sequence[int]],
                       params: Sequence[SamplingParams], *, eos_token_ids: Sequence[int] = (),
                       pad_id: int = 0, tokenizer: Any = None) -> List[GenerationResult]:
    """Contrastive search for each prompt (params[i].penalty_alpha > 0, top_k >= 2, max_tokens
    set); one GenerationResult per prompt. eos_token_ids: for requests without their own."""
    groups: Dict[int, List[int]] = {}
    for i, p in enumerate(params):
        groups.setdefault(p.top_k, []).append(i)
    results: List[Any] = [None] * len(prompts)
    for k, index in groups.items():
        search = _Search(model, [list(prompts[i]) for i in index], [params[i] for i in index],
                         k, tuple(eos_token_ids), pad_id)
        for i, res in zip(index, search.run(tokenizer)):
            results[i] = res
    return results


class _Search:
    """B prompts, k candidates each; the context's hidden states [B, L + t, D] grow by the
    chosen candidate's each step."""

    def __init__(self, model: Any, prompts: List[List[int]], params: List[SamplingParams],
                 k: int, default_eos: Tuple[int, ...], pad_id: int):
        self.model, self.prompts, self.params, self.k, self.pad_id = model, prompts, params, k, pad_id
        self.device = model.device
        self.eos = [() if p.ignore_eos else (p.eos_token_ids if p.eos_token_ids is not None
                                              else default_eos) for p in params]
        self.rows = CandidateRows(params, k, self.device, prompts, default_eos)
        self.alpha = torch.tensor([p.penalty_alpha for p in params], dtype=torch.float64,
                                  device=self.device)

    def run(self, tokenizer: Any) -> List[GenerationResult]:
        B, k, device = len(self.prompts), self.k, self.device
        input_ids, mask = left_padded(self.prompts, self.pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        out = model_step(self.model, input_ids, mask, None, hidden_states=True)
        context, context_mask = out.hidden_states[-1], mask
        past, logits = output_cache(out), out.logits[:, -1, :]
        outputs: List[List[int]] = [[] for _ in range(B)]
        reasons: List[Any] = [None] * B
        repeat = torch.arange(B, device=device).repeat_interleave(k)
        while any(r is None for r in reasons):
            logprobs, ids = self.rows.top(logits)  # [B, k] each
            valid = ids >= 0
            stuck = [b for b, ok in enumerate(valid[:, 0].tolist()) if not ok and reasons[b] is None]
            if stuck:
                raise ValueError(f"prompts {stuck} have no valid token at step "
                                 f"{len(outputs[stuck[0]])} (every token masked)")
            fed = torch.where(valid, ids, torch.full_like(ids, self.pad_id))
            past = select_cache_rows(past, repeat)
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], 1)
            out = model_step(self.model, fed.view(-1, 1), mask.index_select(0, repeat), past,
                             hidden_states=True)
            candidates = out.hidden_states[-1][:, -1, :].view(B, k, -1)
            probs = torch.where(valid, logprobs.exp(), torch.zeros_like(logprobs))
            scores = contrastive_scores(context, context_mask, candidates, probs,
                                        self.alpha)
            chosen = scores.argmax(-1)
            flat = torch.arange(B, device=device) * k + chosen
            past = select_cache_rows(output_cache(out), flat)
            logits = out.logits[:, -1, :].index_select(0, flat)
            picked = candidates[torch.arange(B, device=device), chosen]
            context = torch.cat([context, picked[:, None, :]], 1)
            context_mask = mask
            tokens = fed.gather(1, chosen[:, None])[:, 0]
            self.rows.batch.advance(tokens)
            for b, t in enumerate(tokens.tolist()):
                if reasons[b] is None:
                    outputs[b].append(t)
                    reasons[b] = self._finish(b, outputs[b])
        return [self._result(b, outputs[b], reasons[b], tokenizer) for b in range(B)]

    def _finish(self, b: int, output: List[int]) -> Any:
        """The row's finish reason after its latest token (None: it goes on)."""
        p, token = self.params[b], output[-1]
        if len(output) >= p.min_tokens:
            if token in self.eos[b]:
                return "eos"
            if token in p.stop_token_ids:
                return "stop"
        return "length" if len(output) >= p.max_tokens else None

    def _result(self, b: int, tokens: List[int], reason: str, tokenizer: Any) -> GenerationResult:
        shown = tokens[:-1] if reason != "length" else tokens
        text = tokenizer.decode(shown, skip_special_tokens=True) if tokenizer else None
        return GenerationResult([Completion(tokens, text, reason)])
