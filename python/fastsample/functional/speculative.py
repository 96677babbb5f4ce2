"""fastsample.verify: speculative decoding's verification of draft tokens (a chain, or a tree as
EAGLE and Medusa draft it) through the whole sampling chain, every node in one fused call."""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from .. import reference
from ..kernel import launch
from ..kernel.sample_output import VerifyOutput
from ..requests import arguments, draft_tree, edit_arguments
from ..requests.sampling_batch import SamplingBatch
from .sampling import SAMPLE_DEFAULTS, check_batch_alone, filter_params, logprob_outputs


def as_target(target_logits: Any) -> torch.Tensor:
    """target_logits as a float [B, S + 1, V] tensor."""
    if not isinstance(target_logits, torch.Tensor):
        raise TypeError(f"target_logits must be a torch.Tensor [B, S + 1, V], got "
                        f"{type(target_logits).__name__}")
    if target_logits.dim() != 3 or target_logits.shape[1] < 1:
        raise ValueError(f"target_logits must have shape [B, S + 1, V] (position j scores the "
                         f"token after draft j - 1), got {tuple(target_logits.shape)}")
    arguments.as_logits(target_logits[:, 0], "target_logits")  # dtype, device and V checks
    return target_logits.detach()


def sampling_keywords(given: Dict[str, Any], batch: Optional[SamplingBatch],
                      target: torch.Tensor) -> Dict[str, Any]:
    """Every keyword of fastsample.sample with its value: the given ones over the defaults, or
    (batch) the batch's rows."""
    unknown = sorted(set(given) - set(SAMPLE_DEFAULTS) - {"return_valid"})
    if unknown:
        raise TypeError(f"verify() got unexpected keyword arguments {unknown}; it takes "
                        f"fastsample.sample's keywords")
    if batch is None:
        return {**SAMPLE_DEFAULTS, **given}
    if not isinstance(batch, SamplingBatch):
        raise TypeError(f"batch must be a fastsample.SamplingBatch, got {type(batch).__name__}")
    check_batch_alone("verify", {**SAMPLE_DEFAULTS, **given}, SAMPLE_DEFAULTS)
    batch.check_verifiable()
    root = arguments.as_logits(target[:, 0], "target_logits")
    batch.check_logits(root)
    return {**SAMPLE_DEFAULTS, **batch.kwargs(logits=root)}


def verify(target_logits: torch.Tensor, draft_token_ids: Any, *, draft_probs: Any = None,
           parents: Any = None, return_valid: bool = False, return_probs: bool = False,
           batch: Optional[SamplingBatch] = None, **sampling: Any) -> VerifyOutput:
    """Verifies draft tokens against the target model's logits, exact in distribution: the
    tokens come out distributed as if drawn one by one with `sample` and the same keywords.

    Args:
        target_logits: [B, S + 1, V] float32, float16 or bfloat16: position j scores the token
            after the path's first j drafts (for a tree, position i + 1 follows draft i and
            position 0 the context). Never modified.
        draft_token_ids: int64 [B, S] (or equal-length lists), -1 for no draft: a -1 draft is
            never accepted, so it ends its row's chain.
        draft_probs: float [B, S, V], the proposal distribution each draft was drawn from (q),
            or None (default): one-hot proposals (n-gram, prompt lookup, or greedy drafts).
        parents: None (default: each row's drafts are a chain) or int64 [B, S]: draft i's
            parent's index (-1: a child of the root; parents[b][i] < i), a token tree as
            EAGLE or Medusa draft it; at most 16 children per node, tried in index order.
        return_valid: return instead of raising when a node on a row's path has no valid
            token (VerifyOutput.valid False, token -1 there).
        return_probs: also return each node's distribution p (VerifyOutput.probs).
        batch: a fastsample.SamplingBatch with every row's parameters and history (then no
            sampling keyword may be given); mirostat and grammar rows are refused.
        **sampling: every keyword of fastsample.sample (temperature, the filters, penalties,
            masks, histories, seed, offset, generator, logprobs, logprobs_mode), one value
            per request or per row. token_bitmask may also be [B, S + 1, W]: one mask per
            node.

    Each node's distribution p is what sample draws from at that position: stages 1-3 count
    the drafts on the path to the node as generated output after output_token_ids (penalties,
    DRY, no_repeat_ngram_size, sequence_bias, min_tokens and begin_suppress_tokens see them),
    then temperature and every filter. Greedy rows (temperature 0) accept while the draft is
    p's argmax and then emit the argmax. Sampled rows accept draft x with probability
    min(1, p(x) / q(x)); at the first rejection they emit a token drawn from
    normalize(max(p - q, 0)); after every draft of the path, a bonus token from p. A tree node
    tries its children in order, each against what the rejections before it left of p
    (recursive rejection sampling). The node at depth d draws from its row's Philox stream at
    offset + d: the bonus and residual draws with the bits sample uses there, the acceptance
    coins from separate blocks, so a decode loop advances each row's offset by the tokens it
    emitted (num_accepted + 1). docs/semantics.md states the rule.

    Returns:
        a VerifyOutput: tokens [B, S + 1] (accepted drafts, then the emitted token, -1 after),
        num_accepted [B], accepted_index [B, S], valid [B], and logprobs / probs when asked.
    """
    if return_valid is not False and return_valid is not True:
        raise TypeError(f"return_valid must be a bool, got {type(return_valid).__name__}")
    if return_probs is not False and return_probs is not True:
        raise TypeError(f"return_probs must be a bool, got {type(return_probs).__name__}")
    if torch.compiler.is_compiling():
        raise ValueError("fastsample.verify does not run inside torch.compile (its walk and "
                         "checks read values on the host); call it outside the compiled region")
    target = as_target(target_logits)
    given = sampling_keywords(sampling, batch, target)
    tree = draft_tree.draft_tree(target, draft_token_ids, draft_probs, parents)
    requests, nodes, vocab = target.shape
    flat = arguments.as_logits(target.reshape(requests * nodes, vocab), "target_logits")
    if not launch.runs_compiled(flat):
        return reference.speculative.verify(flat, tree, return_valid=return_valid,
                                return_probs=return_probs, **given)
    root = target[:, 0]
    params = filter_params(root, given)
    bitmask = given["token_bitmask"]
    edit_kwargs = edit_arguments.select(given)
    edit_kwargs["token_bitmask"] = draft_tree.request_bitmask(bitmask, requests, nodes)
    edits = edit_arguments.build(requests, vocab, target.device, **edit_kwargs)
    seeds = arguments.seeds(given["seed"], given["offset"], given["generator"], requests,
                            target.device)
    lp = logprob_outputs(given["logprobs"], given["logprobs_mode"], flat.shape[0],
                          target.device)
    node_params = [(name, draft_tree.node_param(p, nodes)) for name, p in params]
    node_params += [("seed", draft_tree.node_param(seeds.seed, nodes)),
                    ("offset", draft_tree.node_offsets(seeds.offset, tree))]
    node_edits = None if edits is None else draft_tree.node_edits(edits, tree, bitmask, vocab)
    args = launch.batch_args(flat, node_params)
    child = launch.set_drafts(args, tree, flat.shape[0])
    edit_args = None if node_edits is None else node_edits.kernel_args()
    out = launch.run_sample(flat, args, edit_args, lp, return_valid=True)
    probs = None
    if return_probs:
        z = launch.run_process(flat, launch.batch_args(flat, node_params), edit_args)
        probs = torch.softmax(z, dim=1).nan_to_num(nan=0.0).reshape(requests, nodes, vocab)
    return draft_tree.verify_output(tree, out, child, probs, return_valid)

