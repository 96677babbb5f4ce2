"""Reference for fastsample.verify: each node's distribution from the contract's keep_set, and
the verification rule (docs/semantics.md, "Speculative verification") in float64, one node at a
time, with the kernels' Philox coins and draws."""
from __future__ import annotations

import math
from typing import Any, List, Optional

import torch

from . import philox
from ..kernel.param_table import BY_NAME, STAGE_5
from ..kernel.sample_output import SampleOutput, VerifyOutput
from ..requests import arguments, draft_tree
from ..requests.draft_tree import DraftTree
from .contract import edits_of, inverse_cdf, keep_set, logprobs_of, param_rows


def _children(tree: DraftTree, request: int, node: int) -> List[int]:
    """The node's children's draft indices in the order they are tried."""
    tokens = tree.tokens[request].tolist()
    if tree.parents is None:
        found = [node] if node < len(tokens) else []
    else:
        parents = tree.parents[request].tolist()
        found = [i for i, p in enumerate(parents) if p == node - 1]
    return [i for i in found if tokens[i] >= 0][:draft_tree.MAX_CHILDREN]


def _proposal(tree: DraftTree, request: int, draft: int, vocab: int) -> torch.Tensor:
    """q of a draft, float64 [V] (one-hot without draft_probs; negative and NaN read as 0)."""
    if tree.probs is None:
        q = torch.zeros(vocab, dtype=torch.float64)
        q[int(tree.tokens[request, draft])] = 1.0
        return q
    q = tree.probs[request, draft].double().cpu()
    return torch.nan_to_num(q, nan=0.0).clamp(0.0, 1.0)


def _judge(p: torch.Tensor, tree: DraftTree, request: int, node: int, seed: int, offset: int,
           random: int):
    """A sampled node's (token, child): its children in turn against what the rejections
    before each left of p, then a draw from the last residual (or p)."""
    vocab = p.shape[0]
    current = p
    children = _children(tree, request, node)
    for k, i in enumerate(children):
        x = int(tree.tokens[request, i])
        q = _proposal(tree, request, i, vocab)
        if current[x] > 0 and philox.row_accept_coin(seed, offset, k) * q[x] < current[x]:
            return x, i
        rest = (current - q).clamp(min=0.0)
        total = float(rest.sum())
        current = rest / total if total > 0 else torch.zeros_like(p)
    if not children or float(current.sum()) <= 0:
        current = p
    return inverse_cdf(current, random), -1


def verify(logits: torch.Tensor, tree: DraftTree, *, return_valid: bool = False,
           return_probs: bool = False, seed: Any = None, offset: Any = None,
           generator: Optional[torch.Generator] = None, logprobs: Optional[int] = None,
           logprobs_mode: str = "raw", **kwargs: Any) -> VerifyOutput:
    """Reference for fastsample.verify over its node rows: logits [B * (S + 1), V] (node 0 of
    each request the root, node i + 1 after draft i), the validated drafts (requests.
    draft_tree), and sample()'s keywords (kwargs: stages 1-5, one value per request)."""
    logits = arguments.as_logits(logits)
    rows, vocab = logits.shape
    requests, nodes = tree.requests, tree.nodes
    dev = logits.device
    root = logits.reshape(requests, nodes, vocab)[:, 0]
    filters = {}
    for name in STAGE_5:
        p = draft_tree.node_param(arguments.param(name, kwargs.pop(name, BY_NAME[name].off),
                                                  requests, BY_NAME[name].range, dev), nodes)
        filters[name] = p.scalar if p.rows is None else p.rows
    s = arguments.seeds(seed, offset, generator, requests, torch.device("cpu"))
    seeds = param_rows(draft_tree.node_param(s.seed, nodes), rows, torch.device("cpu"), torch.int64)
    offsets = draft_tree.node_offsets(s.offset, tree).rows.cpu()
    seed_rows, offset_rows = seeds.numpy().astype("uint64"), offsets.numpy().astype("uint64")
    bitmask = kwargs.get("token_bitmask")
    kwargs["token_bitmask"] = draft_tree.request_bitmask(bitmask, requests, nodes)
    edits = edits_of(root, kwargs)
    if edits is not None:
        edits = draft_tree.node_edits(edits, tree, bitmask, vocab)
    coins = torch.tensor(philox.row_coin(seed_rows, offset_rows), dtype=torch.float64)
    x, z, keep, valid, greedy = keep_set(logits, edits=edits, xtc_coin=coins, **filters)
    randoms = philox.row_random_u64(seed_rows, offset_rows)
    tokens = torch.full((rows,), -1, dtype=torch.int64)
    child = torch.full((rows,), -1, dtype=torch.int64)
    z64 = z.double().cpu()
    for r in range(rows):
        if not bool(valid[r]):
            continue
        request, node = divmod(r, nodes)
        kept = keep[r].cpu()
        if bool(greedy[r]):
            tokens[r] = argmax = int(kept.nonzero()[0, 0])
            for i in _children(tree, request, node):
                if int(tree.tokens[request, i]) == argmax:
                    child[r] = i
                    break
            continue
        w = torch.where(kept, torch.exp(z64[r] - z64[r][kept].max()), torch.zeros_like(z64[r]))
        tokens[r], child[r] = _judge(w / w.sum(), tree, request, node, int(seed_rows[r]),
                                     int(offset_rows[r]), randoms[r])
    tokens, child = tokens.to(dev), child.to(dev)
    lp = [None] * 3
    if logprobs is not None:
        lp = logprobs_of(logits, tokens, logprobs, logprobs_mode == "processed", z, keep, greedy)
    probs = None
    if return_probs:
        kept_value = torch.where(greedy[:, None], x, z)
        processed = torch.where(keep, kept_value, torch.full_like(z, -math.inf))
        probs = torch.softmax(processed, dim=1).nan_to_num(nan=0.0).reshape(requests, nodes,
                                                                           vocab)
    out = SampleOutput(tokens, valid.to(dev), *lp)
    return draft_tree.verify_output(tree, out, child, probs, return_valid)
