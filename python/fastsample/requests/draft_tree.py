"""A verification's drafts as the kernels take them: the draft tokens, tree and proposal
probabilities of `fastsample.verify`, validated, and a call's per-request arguments widened to
one row per node (node 0 the root, node i + 1 draft i), each with its own history: the request's
output then the drafts on the path to the node, its offset advanced by the node's depth."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import torch

from . import arguments
from .edit_arguments import Edits, IdRows, bitmask_rows
from ..kernel.sample_output import VerifyOutput, invalid_rows_message

# Children one node may have: csrc/include/fastsample/speculative.h (kMaxDraftChildren).
MAX_CHILDREN = 16


@dataclass
class DraftTree:
    """tokens: int64 [B, S] (-1: no draft); parents: int64 [B, S] or None (chains); probs:
    float32 [B, S, V] (last dimension contiguous) or None (one-hot proposals); depth: int64
    [B, S + 1], each node's distance from the root; path: int64 [B, S + 1, S], the drafts from
    the root to each node, in order, -1 after."""

    tokens: torch.Tensor
    parents: Optional[torch.Tensor]
    probs: Optional[torch.Tensor]
    depth: torch.Tensor
    path: torch.Tensor

    @property
    def requests(self) -> int:
        return self.tokens.shape[0]

    @property
    def nodes(self) -> int:
        return self.tokens.shape[1] + 1


def _integer_ids(name: str, v: Any, batch: int, device: torch.device) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        try:
            v = torch.tensor(v, dtype=torch.int64)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name} must be an int64 tensor [B, S] or a list of equal-length "
                            f"lists of ints; got {type(v).__name__} ({e})") from None
    if v.is_floating_point() or v.is_complex() or v.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {v.dtype}")
    if v.dim() != 2 or v.shape[0] != batch:
        raise ValueError(f"{name}: expected shape [B, S] = [{batch}, S], got {tuple(v.shape)}")
    return v.to(device=device, dtype=torch.int64).contiguous()


def _first_bad(name: str, bad: torch.Tensor, values: torch.Tensor, allowed: str) -> None:
    if bool(bad.any()):
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}[{row}][{col}]={int(values[row, col])} is out of range; "
                         f"allowed: {allowed}")


def draft_tree(target: torch.Tensor, draft_token_ids: Any, draft_probs: Any,
               parents: Any) -> DraftTree:
    """Validates a verification's drafts against target logits [B, S + 1, V]."""
    batch, nodes, vocab = target.shape
    device = target.device
    tokens = _integer_ids("draft_token_ids", draft_token_ids, batch, device)
    drafts = tokens.shape[1]
    if drafts != nodes - 1:
        raise ValueError(f"target_logits has {nodes} positions per row; with {drafts} drafts "
                         f"it needs S + 1 = {drafts + 1} (position j scores the token after "
                         f"draft j - 1)")
    _first_bad("draft_token_ids", (tokens < -1) | (tokens >= vocab), tokens,
               f"token ids 0 <= id < V={vocab}, or -1 for no draft")
    columns = torch.arange(drafts, device=device)
    if parents is None:
        tree = None
        depth = torch.arange(nodes, device=device).expand(batch, -1)
        # Node j's path: drafts 0 .. j - 1.
        below = columns[None, :] < torch.arange(nodes, device=device)[:, None]
        path = torch.where(below[None], tokens[:, None, :], torch.full_like(tokens[:, None, :], -1))
    else:
        tree = _integer_ids("parents", parents, batch, device)
        if tree.shape != tokens.shape:
            raise ValueError(f"parents: expected shape [B, S] = [{batch}, {drafts}] (one parent "
                             f"per draft), got {tuple(tree.shape)}")
        _first_bad("parents", (tree < -1) | (tree >= columns[None, :]), tree,
                   "-1 (a child of the root) or the index of an earlier draft (parents[b][i] "
                   "< i: drafts in tree order)")
        children = torch.zeros(batch, nodes, dtype=torch.int64, device=device)
        children.scatter_add_(1, tree + 1, torch.ones_like(tree))
        too_many = children > MAX_CHILDREN
        if bool(too_many.any()):
            row, node = (int(i) for i in too_many.nonzero()[0])
            raise ValueError(f"parents: node {node} of row {row} has {int(children[row, node])} "
                             f"children; verify tries at most {MAX_CHILDREN} per node")
        depth = torch.zeros(batch, nodes, dtype=torch.int64, device=device)
        path = torch.full((batch, nodes, drafts), -1, dtype=torch.int64, device=device)
        rows = torch.arange(batch, device=device)
        for i in range(drafts):  # parents come first: each node extends its parent's path
            parent = tree[:, i] + 1
            d = depth[rows, parent]
            depth[:, i + 1] = d + 1
            path[:, i + 1] = path[rows, parent]
            path[rows, i + 1, d] = tokens[:, i]
    probs = None
    if draft_probs is not None:
        if not isinstance(draft_probs, torch.Tensor) or not draft_probs.is_floating_point():
            raise TypeError(f"draft_probs must be a float tensor [B, S, V] (or None: one-hot "
                            f"proposals), got {type(draft_probs).__name__}")
        if tuple(draft_probs.shape) != (batch, drafts, vocab):
            raise ValueError(f"draft_probs: expected shape [B, S, V] = [{batch}, {drafts}, "
                             f"{vocab}], got {tuple(draft_probs.shape)}")
        arguments.check_capturable("draft_probs", draft_probs, device)
        # Contiguous: the kernels read draft i of row b at (b * S + i) * V.
        probs = draft_probs.to(device=device, dtype=torch.float32).contiguous()
    return DraftTree(tokens, tree, probs, depth.contiguous(), path)


def node_rows(t: torch.Tensor, nodes: int) -> torch.Tensor:
    """A per-request tensor [B, ...] as one row per node [B * nodes, ...]; a tensor shared by
    every request (row stride 0) stays shared."""
    if t.dim() == 0:
        return t
    if t.shape[0] and t.stride(0) == 0:
        return t[:1].expand((t.shape[0] * nodes,) + tuple(t.shape[1:]))
    return t.repeat_interleave(nodes, dim=0)


def node_param(p: arguments.Param, nodes: int) -> arguments.Param:
    return p if p.rows is None else arguments.Param(p.scalar, node_rows(p.rows, nodes))


def node_offsets(offset: arguments.Param, tree: DraftTree) -> arguments.Param:
    """Each node's Philox offset: the request's, plus the node's depth."""
    base = offset.scalar if offset.rows is None else offset.rows.to(tree.depth.device)[:, None]
    return arguments.Param(0, (tree.depth + base).reshape(-1).contiguous())


def node_edits(edits: Edits, tree: DraftTree, token_bitmask: Any, vocab: int) -> Edits:
    """Stages 1-3 per node: the request's, with the path's drafts appended to the output
    history and counted as generated. token_bitmask: [B, W] for every node, or [B, S + 1, W]
    (one mask per node, as a grammar advanced along each path gives it)."""
    nodes = tree.nodes
    if edits.output_counts is not None:
        raise ValueError("verify appends each node's drafts to the output history: pass the "
                         "output as output_token_ids in generation order, not unique ids with "
                         "output_token_counts")
    widened = {}
    for f in dataclasses.fields(edits):
        v = getattr(edits, f.name)
        if isinstance(v, IdRows):
            widened[f.name] = IdRows(node_rows(v.ids, nodes))
        elif isinstance(v, arguments.Param):
            widened[f.name] = node_param(v, nodes)
        elif isinstance(v, torch.Tensor):
            widened[f.name] = node_rows(v, nodes)
        else:
            widened[f.name] = v
    batch = tree.requests
    path = tree.path.reshape(batch * nodes, nodes - 1)
    widened["output"] = IdRows(torch.cat([widened["output"].ids, path], dim=1).contiguous())
    generated = edits.num_generated
    base = (generated.scalar if generated.rows is None
            else generated.rows.to(tree.depth.device)[:, None])
    widened["num_generated"] = arguments.Param(0, (tree.depth + base).reshape(-1).contiguous())
    if isinstance(token_bitmask, torch.Tensor) and token_bitmask.dim() == 3:
        widened["bitmask"] = bitmask_rows(token_bitmask.reshape(batch * nodes, -1), batch * nodes,
                                      vocab, tree.tokens.device)
    return Edits(**widened)


def request_bitmask(token_bitmask: Any, batch: int, nodes: int) -> Any:
    """The [B, W] mask stages 1-3 validate for the requests: a per-node mask's root rows."""
    if isinstance(token_bitmask, torch.Tensor) and token_bitmask.dim() == 3:
        if token_bitmask.shape[:2] != (batch, nodes):
            raise ValueError(f"token_bitmask: expected shape [B, W] or [B, S + 1, W] = "
                             f"[{batch}, {nodes}, W], got {tuple(token_bitmask.shape)}")
        return token_bitmask[:, 0]
    return token_bitmask


@dataclass
class Walk:
    """The accepted path of each request through its nodes' verdicts. nodes: int64 [B, S + 1],
    the node each output position comes from (-1 after the last); the rest as VerifyOutput."""

    nodes: torch.Tensor
    tokens: torch.Tensor
    num_accepted: torch.Tensor
    accepted_index: torch.Tensor
    valid: torch.Tensor

    def gather(self, per_node: torch.Tensor, fill: float) -> torch.Tensor:
        """A per-node output [B * (S + 1), ...] along the path: [B, S + 1, ...], `fill` after."""
        batch, positions = self.nodes.shape
        values = per_node.reshape((batch, positions) + tuple(per_node.shape[1:]))
        index = self.nodes.clamp(min=0)
        index = index.reshape(index.shape + (1,) * (values.dim() - 2)).expand_as(values)
        taken = values.gather(1, index)
        on_path = (self.nodes >= 0).reshape(index.shape[:2] + (1,) * (values.dim() - 2))
        return torch.where(on_path, taken, torch.full_like(taken, fill))


def walk(tree: DraftTree, tokens: torch.Tensor, child: torch.Tensor,
         valid: torch.Tensor) -> Walk:
    """Follows each request from the root: while a node accepted a child, on to that child; the
    first node that accepted none emits its token. tokens, child, valid: the nodes' verdicts
    [B * (S + 1)] (each node's token, accepted child's draft index or -1, validity)."""
    batch, nodes = tree.requests, tree.nodes
    tokens, child, valid = (t.reshape(batch, nodes) for t in (tokens, child, valid))
    drafts = nodes - 1
    device = tokens.device
    positions = torch.arange(nodes, device=device)
    if tree.parents is None:
        # A chain: node j's child is draft j, so the path is nodes 0 .. num_accepted.
        accepted = (child[:, :drafts] >= 0).to(torch.int64)
        num_accepted = accepted.cumprod(dim=1).sum(dim=1)
        path = torch.where(positions[None] <= num_accepted[:, None], positions[None], -1)
    else:
        path = torch.full((batch, nodes), -1, dtype=torch.int64, device=device)
        node = torch.zeros(batch, dtype=torch.int64, device=device)
        active = torch.ones(batch, dtype=torch.bool, device=device)
        for step in range(nodes):
            path[:, step] = torch.where(active, node, -1)
            c = child.gather(1, node[:, None])[:, 0]
            active = active & (c >= 0)
            node = torch.where(active, c + 1, node)
        num_accepted = (path >= 0).sum(dim=1) - 1
    on_path = path >= 0
    index = path.clamp(min=0)
    out_tokens = torch.where(on_path, tokens.gather(1, index), -1)
    accepted_index = torch.where(on_path[:, 1:], path[:, 1:] - 1, -1)
    path_valid = (valid.gather(1, index) | ~on_path).all(dim=1)
    out_tokens = torch.where(on_path & valid.gather(1, index), out_tokens, -1)
    return Walk(path, out_tokens, num_accepted, accepted_index, path_valid)


def verify_output(tree: DraftTree, out: Any, child: torch.Tensor,
                  probs: Optional[torch.Tensor], return_valid: bool) -> VerifyOutput:
    """The requests' results from the nodes' (a SampleOutput and each node's accepted child)."""
    path = walk(tree, out.tokens, child, out.valid)
    if not return_valid and not bool(path.valid.all()):
        raise ValueError(invalid_rows_message(path.valid))
    logprobs = top_ids = top_logprobs = None
    if out.logprobs is not None:
        logprobs = path.gather(out.logprobs, float("-inf"))
        top_ids = path.gather(out.top_ids, -1)
        top_logprobs = path.gather(out.top_logprobs, float("-inf"))
    return VerifyOutput(path.tokens, path.num_accepted, path.accepted_index, path.valid,
                        logprobs, top_ids, top_logprobs, probs)
