"""`python -m fastsample bench --model DIR`: end-to-end decoding with a local transformers causal
LM, tokens per second with fastsample's decode loop (fastsample.generate) beside
transformers' own sampling (model.generate(do_sample=True)), the same parameters, prompts and
number of new tokens, rounds alternating between the two."""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Dict, List

import torch

from ..adapters import from_hf
from ..decode.generate import generate
from .timing import Timing


def load_model(path: str, device: str, dtype: torch.dtype):
    """AutoModelForCausalLM.from_pretrained(path) in eval mode, as `dtype` on `device`."""
    try:
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        raise ImportError("bench --model needs transformers: pip install transformers") from e
    return AutoModelForCausalLM.from_pretrained(path).to(device=device, dtype=dtype).eval()


def decode_rates(model, params: dict, prompts: int, prompt_len: int, new_tokens: int,
                 rounds: int, progress: Callable[[str], None]) -> Dict[str, Timing]:
    """Seconds per generated token for each loop ("fastsample", "transformers")."""
    from transformers import GenerationConfig
    vocab = model.get_output_embeddings().weight.shape[0]
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (prompts, prompt_len), generator=g).to(model.device)
    mask = torch.ones_like(input_ids)
    pad = model.generation_config.pad_token_id
    # One generation config for both loops, every sampling field set: transformers would
    # otherwise fill unset ones from its defaults (top_k 50) and the model's own config.
    config = GenerationConfig(
        do_sample=True, temperature=params["temperature"], top_k=params.get("top_k", 0),
        top_p=params.get("top_p", 1.0), min_p=params.get("min_p"), repetition_penalty=1.0,
        max_new_tokens=new_tokens, min_new_tokens=new_tokens,
        pad_token_id=pad if pad is not None else 0, eos_token_id=None)
    fs_params = replace(from_hf(config), seed=0)
    loops = {
        "fastsample": lambda: generate(model, input_ids, fs_params),
        "transformers": lambda: model.generate(input_ids=input_ids, attention_mask=mask,
                                               generation_config=config),
    }
    per_token: Dict[str, List[float]] = {name: [] for name in loops}
    total = prompts * new_tokens
    for r in range(rounds + 1):  # round 0 warms both up and is not kept
        for name, run in loops.items():
            progress(f"round {r}/{rounds}: {name}")
            start = time.perf_counter()
            with torch.no_grad():
                run()
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            if r:
                per_token[name].append((time.perf_counter() - start) / total)
    return {name: Timing(sorted(v)[len(v) // 2], v) for name, v in per_token.items()}
