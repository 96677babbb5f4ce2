"""What fastsample is measured against in `python -m fastsample bench`, on the same logits in
the same run: each peer samples one token per row with the case's parameters (or, for the
floors, does the least any sampler must do).

- transformers: its processors and warpers (TemperatureLogitsWarper, TopK, TopP, MinP, in
  generate's order), softmax and torch.multinomial: what model.generate(do_sample=True) runs.
- torch-sort: sampling as vLLM's native (non-FlashInfer) path does it: temperature, min-p as a
  mask below max prob x min_p, one sort for top-k and top-p, softmax, then the argmax of probs
  over exponential noise.
- flashinfer: FlashInfer as vLLM's FlashInfer path calls it (a GPU and flashinfer installed):
  temperature and min-p in torch, then top_k_top_p_sampling_from_logits, or
  top_p_sampling_from_probs / top_k_sampling_from_probs when one filter is off.
- llama.cpp: llama.cpp's sampler chain through llama-cpp-python, in llama.cpp's order (top-k,
  top-p, min-p, then temperature, then the draw), one row at a time as llama.cpp samples (when
  llama_cpp is importable).
- floor-read: torch.amax over the logits, one read of them; floor-exp: torch.logsumexp, the
  exp pass a softmax needs, as torch runs it. Reference points, not bounds: torch's own
  kernels are not the fastest possible (fastsample's bfloat16 call can beat torch's amax).
"""
from __future__ import annotations

import importlib.util
import weakref
from typing import Callable, Dict, Optional

import torch

from ..functional.sampling import sample
from .workload import hf_chain

PEERS = ("fastsample", "transformers", "torch-sort", "flashinfer", "llama.cpp", "floor-read",
         "floor-exp")
LABELS = {
    "fastsample": "fastsample",
    "transformers": "transformers' processors",
    "torch-sort": "torch sort-based sampling (vLLM's native path)",
    "flashinfer": "FlashInfer",
    "llama.cpp": "llama.cpp's sampler chain",
    "floor-read": "the one-read floor (torch.amax)",
    "floor-exp": "the one-exp-pass floor (torch.logsumexp)",
}


def unavailable(peer: str, params: dict, device: str) -> Optional[str]:
    """Why `peer` cannot run this case here, or None."""
    if peer == "transformers" and importlib.util.find_spec("transformers") is None:
        return "transformers is not installed"
    if peer == "flashinfer":
        if device != "cuda":
            return "FlashInfer runs on CUDA GPUs only"
        if importlib.util.find_spec("flashinfer") is None:
            return "flashinfer is not installed"
    if peer == "llama.cpp":
        if device != "cpu":
            return "llama.cpp's sampler runs on the CPU"
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (pip install llama-cpp-python)"
    return None


def make(peer: str, params: dict, logits: torch.Tensor) -> Callable[[], object]:
    """A call that samples `logits` as `peer` does, with the case's parameters."""
    if peer == "fastsample":
        return lambda: sample(logits, **params)
    if peer == "transformers":
        run = hf_chain(params)
        return lambda: run(logits)
    if peer == "torch-sort":
        return lambda: torch_sort_sample(logits, **params)
    if peer == "flashinfer":
        return _flashinfer(params, logits)
    if peer == "llama.cpp":
        return _llama_cpp(params, logits)
    if peer == "floor-read":
        return lambda: torch.amax(logits, -1)
    if peer == "floor-exp":
        return lambda: torch.logsumexp(logits, -1)
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")


def torch_sort_sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                      top_p: float = 1.0, min_p: float = 0.0) -> torch.Tensor:
    """int64 [B]: temperature, min-p, top-k and top-p with one sort, then the exponential-race
    draw, in plain torch (the sort-based path vLLM runs without FlashInfer)."""
    x = logits.float() / temperature
    if min_p > 0:
        probs = x.softmax(-1)
        x = x.masked_fill(probs < probs.amax(-1, keepdim=True) * min_p, float("-inf"))
    vocab = x.shape[-1]
    if 0 < top_k < vocab or top_p < 1.0:
        ascending, order = x.sort(-1)
        if 0 < top_k < vocab:
            kth = ascending[:, vocab - top_k:vocab - top_k + 1]
            ascending = ascending.masked_fill(ascending < kth, float("-inf"))
        if top_p < 1.0:
            below = ascending.softmax(-1).cumsum(-1) <= 1.0 - top_p
            below[:, -1] = False  # the most likely token always stays
            ascending = ascending.masked_fill(below, float("-inf"))
        x = torch.empty_like(x).scatter_(-1, order, ascending)
    probs = x.softmax(-1)
    return probs.div_(torch.empty_like(probs).exponential_()).argmax(-1)


def _flashinfer(params: dict, logits: torch.Tensor) -> Callable[[], object]:
    import flashinfer
    batch, vocab = logits.shape
    top_k = params.get("top_k") or 0
    top_p = params.get("top_p", 1.0)
    min_p = params.get("min_p", 0.0)
    temperature = params["temperature"]
    k_rows = torch.full((batch,), top_k if 0 < top_k < vocab else vocab, dtype=torch.int32,
                        device=logits.device)
    p_rows = torch.full((batch,), top_p, device=logits.device)
    sampling = flashinfer.sampling

    def run() -> torch.Tensor:
        x = logits.float() / temperature
        if min_p > 0:
            probs = x.softmax(-1)
            x = x.masked_fill(probs < probs.amax(-1, keepdim=True) * min_p, float("-inf"))
        if 0 < top_k < vocab and top_p < 1.0:
            return sampling.top_k_top_p_sampling_from_logits(x, k_rows, p_rows)
        if top_p < 1.0:
            return sampling.top_p_sampling_from_probs(x.softmax(-1), p_rows)
        if 0 < top_k < vocab:
            return sampling.top_k_sampling_from_probs(x.softmax(-1), k_rows)
        return sampling.sampling_from_probs(x.softmax(-1))

    return run


def _llama_cpp(params: dict, logits: torch.Tensor) -> Callable[[], object]:
    import ctypes

    import llama_cpp
    import numpy as np
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    stages = []
    if params.get("top_k"):
        stages.append(llama_cpp.llama_sampler_init_top_k(int(params["top_k"])))
    if params.get("top_p", 1.0) < 1.0:
        stages.append(llama_cpp.llama_sampler_init_top_p(float(params["top_p"]), 1))
    if params.get("min_p"):
        stages.append(llama_cpp.llama_sampler_init_min_p(float(params["min_p"]), 1))
    stages.append(llama_cpp.llama_sampler_init_temp(float(params["temperature"])))
    stages.append(llama_cpp.llama_sampler_init_dist(1234))
    for stage in stages:
        llama_cpp.llama_sampler_chain_add(chain, stage)
    batch, vocab = logits.shape
    rows = logits.float().numpy()
    data = (llama_cpp.llama_token_data * vocab)()
    view = np.frombuffer(data, dtype=np.dtype([("id", np.int32), ("logit", np.float32),
                                               ("p", np.float32)]))
    ids = np.arange(vocab, dtype=np.int32)

    def run() -> list:
        tokens = []
        for row in range(batch):
            # llama.cpp's own sampling fills this array from the context's logits each step.
            view["id"] = ids
            view["logit"] = rows[row]
            view["p"] = 0.0
            candidates = llama_cpp.llama_token_data_array(data=data, size=vocab, selected=-1,
                                                          sorted=False)
            llama_cpp.llama_sampler_apply(chain, ctypes.byref(candidates))
            tokens.append(int(data[candidates.selected].id))
        return tokens

    weakref.finalize(run, llama_cpp.llama_sampler_free, chain)  # the chain owns its stages
    return run


def available_peers(params: dict, device: str, wanted: tuple = PEERS) -> Dict[str, Optional[str]]:
    """{peer: None if it runs here, else why not} for the peers asked for."""
    return {peer: unavailable(peer, params, device) for peer in wanted}
