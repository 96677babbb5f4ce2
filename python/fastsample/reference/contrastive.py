"""Contrastive search in plain torch, as transformers 4.x's `_contrastive_search` ran it: the
ranking (`contrastive_scores`, transformers' `_ranking_fast`) and the search one prompt at a
time (`contrastive_search`): the oracles fastsample's fused kernel and batched search are
tested against, and the peer of its benchmark."""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Union

import torch

from ..decode.model_io import cache_keyword, output_cache


def contrastive_scores(context: torch.Tensor, context_mask: torch.Tensor,
                       candidates: torch.Tensor, probs: torch.Tensor,
                       penalty_alpha: Union[float, torch.Tensor]) -> torch.Tensor:
    """fastsample.contrastive_scores by transformers' formula: normalized hidden states and
    their matmul, masked positions at the float minimum, then (1 - alpha) p - alpha max
    (-inf where p <= 0). In float32 whatever the hidden states' dtype (transformers stays in
    it), and a cosine that is not finite (a zero vector's) is 1, as fastsample's contract
    says."""
    alpha = torch.as_tensor(penalty_alpha, dtype=torch.float64, device=probs.device)
    alpha = alpha.expand(probs.shape[0]) if alpha.dim() == 0 else alpha
    context, candidates = context.float(), candidates.float()
    norm_context = context / context.norm(dim=2, keepdim=True)
    norm_candidates = candidates / candidates.norm(dim=2, keepdim=True)
    cosine = torch.matmul(norm_candidates, norm_context.transpose(1, 2))  # [B, k, L]
    cosine = torch.nan_to_num(cosine, nan=1.0, posinf=1.0, neginf=1.0)
    cosine = cosine.masked_fill((context_mask == 0)[:, None, :], torch.finfo(cosine.dtype).min)
    penalty = cosine.max(dim=-1).values.float()
    scores = (1.0 - alpha).float()[:, None] * probs.float() - alpha.float()[:, None] * penalty
    return torch.where(probs > 0, scores, torch.full_like(scores, -float("inf")))


def contrastive_search(model: Any, prompt: Sequence[int], penalty_alpha: float, top_k: int,
                       max_new_tokens: int, eos_token_ids: Sequence[int] = (),
                       process: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
                       ) -> List[int]:
    """The tokens contrastive search generates for one prompt (EOS included when it ends on
    one). process(input_ids [1, T], logits [1, V]) -> logits: the logits processors (e.g.
    transformers' own), applied before the softmax."""
    ids = torch.tensor([list(prompt)], device=model.device)
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, output_hidden_states=True)
    past, context, logits = output_cache(out), out.hidden_states[-1], out.logits[:, -1, :]
    tokens: List[int] = []
    while len(tokens) < max_new_tokens:
        scores = logits.float()
        if process is not None:
            scores = process(torch.cat([ids, torch.tensor([tokens], dtype=ids.dtype,
                                                          device=ids.device)], 1), scores)
        top_probs, top_ids = torch.topk(torch.softmax(scores, -1), top_k)
        past.batch_repeat_interleave(top_k)
        position = torch.full((top_k, 1), ids.shape[1] + len(tokens), device=ids.device)
        with torch.no_grad():
            out = model(input_ids=top_ids.view(-1, 1), position_ids=position, use_cache=True,
                        output_hidden_states=True, **{cache_keyword(model): past})
        candidates = out.hidden_states[-1]  # [k, 1, D]
        contexts = context.repeat_interleave(top_k, 0)  # [k, L, D]
        cosine = torch.matmul(contexts / contexts.norm(dim=2, keepdim=True),
                              (candidates / candidates.norm(dim=2, keepdim=True))
                              .transpose(1, 2)).squeeze(-1)  # [k, L]
        score = (1.0 - penalty_alpha) * top_probs.view(-1) \
            - penalty_alpha * cosine.max(-1).values
        best = int(score.argmax())
        tokens.append(int(top_ids[0, best]))
        past = output_cache(out)
        past.batch_select_indices(torch.tensor([best], device=ids.device))
        context = torch.cat([context, candidates[best:best + 1]], 1)
        logits = out.logits[best:best + 1, -1, :]
        if tokens[-1] in eos_token_ids:
            break
    return tokens
