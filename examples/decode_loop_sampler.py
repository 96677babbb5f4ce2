"""A plain torch decode loop with fastsample.Sampler: requests with different parameters share
one fused sampling call per step, and a request joins mid-generation.

Runs anywhere (a tiny random-weight Llama built from a config, no downloads):
    python examples/decode_loop_sampler.py
With a real model, replace `model` (any causal LM returning logits) and pass its tokenizer.
"""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import fastsample

torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2)).eval()
vocab = model.config.vocab_size
sampler = fastsample.Sampler(vocab, eos_token_id=2)
histories = {
    "greedy": [5, 6, 7],
    "creative": [8, 9],
}
sampler.add("greedy", fastsample.SamplingParams(temperature=0.0, max_tokens=8), histories["greedy"])
sampler.add("creative", fastsample.SamplingParams(temperature=0.9, top_p=0.95, seed=1,
                                                  repetition_penalty=1.2, max_tokens=8, logprobs=2),
            histories["creative"])

step = 0
while len(sampler):
    if step == 3:  # continuous batching: a request joins between steps
        histories["late"] = [10, 11, 12]
        sampler.add("late", fastsample.SamplingParams(temperature=0.7, top_k=40, seed=2,
                                                      max_tokens=4), histories["late"])
    # No KV cache here, to keep the loop short: each step re-reads every history.
    rows = []
    for rid in sampler.request_ids:
        ids = torch.tensor([histories[rid]])
        with torch.no_grad():
            rows.append(model(input_ids=ids).logits[:, -1, :])
    for out in sampler.step(torch.cat(rows)):
        histories[out.request_id].append(out.token)
        extra = f" logprob {out.logprob:.3f} top {out.top_ids}" if out.logprob is not None else ""
        print(f"step {step} {out.request_id:>8}: token {out.token:3d}"
              f"{' finished: ' + out.finish_reason if out.finished else ''}{extra}")
    step += 1
