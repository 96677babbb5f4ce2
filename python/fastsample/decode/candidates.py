"""The deterministic strategies' per-step question: each row's K most likely next tokens
under its request's processed distribution, and their log-probabilities, from one fused call
over the rows (the kernels' processed top-n logprobs: stages 1-3 over the row's own history,
temperature, filters, log-softmax and top K in one pass). Beam search and contrastive search
ask it; their rows follow the chosen sequences between steps (`batch.fork`)."""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence, Tuple

import torch

from ..kernel import launch
from ..kernel.param_table import STAGE_5, TABLE
from ..requests.sampling_batch import SamplingBatch
from ..requests.sampling_params import SamplingParams

FUSED_TOP = 20  # the kernels' top-n (kMaxTopLogprobs): beyond it a torch.topk does it
FILTERS_OFF = {p.name: p.off for p in TABLE if p.name in STAGE_5 and p.name != "temperature"}


def candidate_row(p: SamplingParams, top: int) -> SamplingParams:
    """A row scoring the request's candidates: its stages 1-5 (a greedy request's filters off,
    at temperature 1: the log-softmax after stages 1-3), one sequence, and the processed
    top-`top` logprobs (0: the caller takes its top K from the processed logits)."""
    row = replace(p, n=1, best_of=None, num_beams=1, length_penalty=1.0, early_stopping=False,
                  penalty_alpha=0.0)
    if p.temperature == 0.0:
        row = replace(row, temperature=1.0, **FILTERS_OFF)
    return replace(row, logprobs=top or None, logprobs_mode="processed")


class CandidateRows:
    """Rows whose K best next tokens a strategy reads each step. batch: their SamplingBatch
    (fork it after the chosen parents, advance it with the chosen tokens)."""

    def __init__(self, params: Sequence[SamplingParams], k: int, device: torch.device,
                 prompts: Sequence[Sequence[int]], eos_token_ids: Sequence[int]):
        self.k = k
        self.fused = k <= FUSED_TOP
        made = {}  # beams share their request's params: one candidate row each
        rows = [made.setdefault(id(p), candidate_row(p, k if self.fused else 0)) for p in params]
        self.batch = SamplingBatch(rows, device, eos_token_ids=eos_token_ids,
                                   prompt_token_ids=prompts)

    def top(self, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each row's K best next tokens: (processed logprobs float32 [N, K], ids int64 [N, K];
        -inf / -1 past the tokens the row keeps), best first, lower id first among ties."""
        logits = logits.float().contiguous()
        args, edits = self.batch.kernel_args(logits)
        if self.fused:
            out = launch.run_sample(logits, args, edits, self.batch.logprob_outputs(),
                                    return_valid=True)
            return out.top_logprobs, out.top_ids
        z = launch.run_process(logits, args, edits)
        top = min(self.k, z.shape[1])
        values, ids = torch.topk(torch.log_softmax(z, -1), top)
        ids = torch.where(torch.isfinite(values), ids, torch.full_like(ids, -1))
        if top < self.k:  # K > V: the kernels' top-n pads the same way
            pad = (0, self.k - top)
            values = torch.nn.functional.pad(values, pad, value=-float("inf"))
            ids = torch.nn.functional.pad(ids, pad, value=-1)
        return values, ids
