"""Beam search for fastsample.generate and fastsample.transformers.beam_search_loop:
transformers' algorithm (its `_beam_search` since 4.50: K = max(2, 1 + finishing ids) x
num_beams candidates per prompt and step, finished beams scored sum logprob / length^penalty,
its early-stopping rules), with each beam's next-token log-probabilities and top K from one
fused call over the [B x num_beams, V] rows.

A beam's log-probabilities are those of the distribution its request would sample from (the
processed logprobs: stages 1-3 over the beam's own history, then temperature and filters; a
greedy request's are the log-softmax after stages 1-3), so penalties, masks and biases apply
per beam. transformers instead runs its processors on the log-softmax without renormalizing;
the two agree whenever no processor is set (docs/decode_loop.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..requests.sampling_params import SamplingParams
from .candidates import CandidateRows
from .model_io import left_padded, model_step, output_cache, select_cache_rows
from .results import Completion, GenerationResult

SHUT = -1.0e9  # transformers' score for a candidate that may not be chosen


def candidates_per_prompt(num_beams: int, finishing_ids: int) -> int:
    """K: the candidates kept per prompt and step, so that num_beams of them still run when
    every finishing id is among the best (transformers' beams_to_keep)."""
    return max(2, 1 + finishing_ids) * num_beams


@dataclass
class _Group:
    """Prompts searched together: one num_beams, length_penalty and early_stopping."""

    prompts: List[List[int]]
    params: List[SamplingParams]
    index: List[int]  # position of each prompt in the caller's list


def beam_search(model: Any, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams],
                *, eos_token_ids: Sequence[int] = (), pad_id: int = 0,
                tokenizer: Any = None) -> List[GenerationResult]:
    """Beam search for each prompt (params[i].num_beams >= 1, max_tokens set); one
    GenerationResult per prompt with its n best beams, best first (score: the length-penalized
    sum of the beam's logprobs). eos_token_ids: for requests without their own."""
    groups: Dict[Tuple[Any, ...], _Group] = {}
    for i, (prompt, p) in enumerate(zip(prompts, params)):
        key = (p.num_beams, p.length_penalty, p.early_stopping)
        g = groups.setdefault(key, _Group([], [], []))
        g.prompts.append(list(prompt))
        g.params.append(p)
        g.index.append(i)
    results: List[Optional[GenerationResult]] = [None] * len(prompts)
    default_eos = tuple(eos_token_ids)
    for (num_beams, length_penalty, early_stopping), g in groups.items():
        search = _Search(model, g.prompts, g.params, num_beams, length_penalty, early_stopping,
                         default_eos, pad_id)
        for i, res in zip(g.index, search.run(tokenizer)):
            results[i] = res
    return results


class _Search:
    """One beam search over B prompts x k beams; state as transformers keeps it ([B, k] beams
    running, [B, k] finished), tokens [B, k, T]."""

    def __init__(self, model: Any, prompts: List[List[int]], params: List[SamplingParams],
                 k: int, length_penalty: float, early_stopping: Any,
                 default_eos: Tuple[int, ...], pad_id: int):
        self.model, self.prompts, self.params = model, prompts, params
        self.k, self.length_penalty, self.early_stopping = k, length_penalty, early_stopping
        self.pad_id = pad_id
        self.device = model.device
        self.eos = [() if p.ignore_eos else (p.eos_token_ids if p.eos_token_ids is not None
                                              else default_eos) for p in params]
        self.ends = [tuple(dict.fromkeys(e + p.stop_token_ids)) for e, p in zip(self.eos, params)]
        self.K = candidates_per_prompt(k, max(len(e) for e in self.ends))
        self.rows = CandidateRows([p for p in params for _ in range(k)], self.K, self.device,
                                  [pr for pr in prompts for _ in range(k)], default_eos)

    def run(self, tokenizer: Any) -> List[GenerationResult]:
        B, k, K, device = len(self.prompts), self.k, self.K, self.device
        max_new = torch.tensor([p.max_tokens for p in self.params], device=device)
        T = int(max_new.max())
        width = max(len(e) for e in self.ends)
        ends = torch.full((B, max(width, 1)), -2, dtype=torch.int64, device=device)
        for b, e in enumerate(self.ends):
            ends[b, :len(e)] = torch.tensor(e, dtype=torch.int64)
        seqs = torch.full((B, k, T), self.pad_id, dtype=torch.int64, device=device)
        scores = torch.zeros((B, k), device=device)
        scores[:, 1:] = SHUT  # only the first beam's candidates at the first step
        done_seqs = seqs.clone()
        done_scores = torch.full((B, k), SHUT, device=device)
        done_len = torch.zeros((B, k), dtype=torch.int64, device=device)
        done = torch.zeros((B, k), dtype=torch.bool, device=device)
        improvable = torch.ones((B, 1), dtype=torch.bool, device=device)
        first_k = torch.arange(K, device=device) < k
        input_ids, mask = left_padded(self.prompts, self.pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        out = model_step(self.model, input_ids, mask, None)
        rows = torch.arange(B, device=device).repeat_interleave(k)
        past = select_cache_rows(output_cache(out), rows)
        logits, mask = out.logits[:, -1, :].index_select(0, rows), mask.index_select(0, rows)
        for cur in range(T):
            values, ids = self.rows.top(logits)  # [B k, K] each
            if cur == 0:
                stuck = [b for b, ok in enumerate(ids.view(B, k, K)[:, 0, 0].tolist())
                         if ok < 0]
                if stuck:
                    raise ValueError(f"prompts {stuck} have no valid token at the first step "
                                     f"(every token masked)")
            total = (values.view(B, k, K) + scores[:, :, None]).view(B, k * K)
            top, at = torch.topk(total, K)
            parent = torch.div(at, K, rounding_mode="floor")
            token = ids.view(B, k * K).gather(1, at)
            valid = token >= 0  # fewer than K tokens kept by the filters: no candidate
            token = torch.where(valid, token, torch.full_like(token, self.pad_id))
            top = torch.where(valid, top, torch.full_like(top, -float("inf")))
            cand = seqs.gather(1, parent[:, :, None].expand(B, K, T)).clone()
            cand[:, :, cur] = token
            hits = (token[:, :, None] == ends[:, None, :]).any(-1) | ~valid \
                | (cur + 1 >= max_new)[:, None]
            # The k best candidates that go on.
            running = top + hits.float() * SHUT
            keep = torch.topk(running, k).indices
            seqs = cand.gather(1, keep[:, :, None].expand(B, k, T))
            scores = running.gather(1, keep)
            parents = parent.gather(1, keep)
            # Finished candidates among the first k replace worse finished beams.
            # In torch: a large length_penalty overflows to inf there, not an OverflowError.
            ended = top / torch.tensor(float(cur + 1), dtype=torch.float64,
                                       device=device).pow(self.length_penalty).float()
            full = done.all(-1, keepdim=True) & (self.early_stopping is True)
            ended = ended + full.float() * SHUT + (~improvable).float() * SHUT \
                + (~(hits & first_k)).float() * SHUT
            merged = torch.cat([done_scores, ended], 1)
            best = torch.topk(merged, k).indices
            done_scores = merged.gather(1, best)
            done_seqs = torch.cat([done_seqs, cand], 1).gather(1, best[:, :, None].expand(B, k, T))
            done_len = torch.cat([done_len, torch.full((B, K), cur + 1, device=device)],
                                 1).gather(1, best)
            done = torch.cat([done, hits & first_k], 1).gather(1, best)
            improvable = improvable & self._improvable(scores, done_scores, done, cur + 1, max_new)
            if not (bool(improvable.any()) and not (bool(done.all()) and self.early_stopping is True)
                    and not bool(hits.all())):
                break
            flat = (torch.arange(B, device=device)[:, None] * k + parents).view(-1)
            past = select_cache_rows(past, flat)
            self.rows.batch.fork(flat.tolist())
            step = seqs[:, :, cur].reshape(-1)
            self.rows.batch.advance(step)
            mask = torch.cat([mask.index_select(0, flat),
                              torch.ones((B * k, 1), dtype=mask.dtype, device=device)], 1)
            out = model_step(self.model, step[:, None], mask, past)
            past, logits = output_cache(out), out.logits[:, -1, :]
        return [self._result(b, done_seqs[b], done_scores[b], done_len[b], tokenizer)
                for b in range(B)]

    def _improvable(self, scores: torch.Tensor, done_scores: torch.Tensor, done: torch.Tensor,
                    length: int, max_new: torch.Tensor) -> torch.Tensor:
        """transformers' early-stop heuristic: whether the best running beam, at its best
        hypothetical length, could still beat the worst finished one; never past a prompt's
        max_tokens."""
        if self.early_stopping == "never" and self.length_penalty > 0.0:
            best_length = max_new[:, None].float()
        else:
            best_length = torch.full_like(scores[:, :1], float(length))
        best = scores[:, :1] / best_length ** self.length_penalty
        worst = torch.where(done, done_scores.min(1, keepdim=True).values,
                            torch.full_like(done_scores, SHUT))
        return (best > worst).any(-1, keepdim=True) & (length < max_new)[:, None]

    def _result(self, b: int, seqs: torch.Tensor, scores: torch.Tensor, lengths: torch.Tensor,
                tokenizer: Any) -> GenerationResult:
        out = []
        n = self.params[b].n
        found = int((scores[:n] > -float("inf")).sum()) if lengths[:n].min() > 0 else 0
        if found < n:
            raise ValueError(f"prompt {b}: only {found} of its n={n} beams found a valid "
                             f"continuation (the masks leave too few tokens)")
        for j in range(n):
            tokens = seqs[j, :int(lengths[j])].tolist()
            last = tokens[-1] if tokens else None
            reason = "eos" if last in self.eos[b] else (
                "stop" if last in self.params[b].stop_token_ids else "length")
            shown = tokens[:-1] if reason != "length" else tokens
            text = tokenizer.decode(shown, skip_special_tokens=True) if tokenizer else None
            out.append(Completion(tokens, text, reason, None, float(scores[j])))
        return GenerationResult(out)
