"""fastsample inside transformers' own generate(): the drop-in logits processor, and the
fastsample decode loop through custom_generate.

Runs anywhere (a tiny random-weight Llama, no downloads):
    python examples/transformers_processor.py
"""
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessorList

from fastsample.transformers import FastLogitsProcessor, sample_loop

torch.manual_seed(0)
model = LlamaForCausalLM(LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2, pad_token_id=0)).eval()
inputs = dict(input_ids=torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]]),
              attention_mask=torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]))

# 1. The processor replaces repetition penalty + temperature + top-k + top-p + min-p.
#    generate_kwargs() switches transformers' own warpers off (v5 would add TopK(50) itself).
proc = FastLogitsProcessor(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05,
                           repetition_penalty=1.1)
out = model.generate(**inputs, logits_processor=LogitsProcessorList([proc]), max_new_tokens=8,
                     pad_token_id=0, **proc.generate_kwargs())
print("processor:", out[:, inputs["input_ids"].shape[1]:].tolist())

# 2. The whole loop: fastsample's Sampler, parameters from the generation config.
out = model.generate(**inputs, custom_generate=sample_loop, do_sample=True, temperature=0.7,
                     top_p=0.9, max_new_tokens=8, pad_token_id=0)
print("sample_loop:", out[:, inputs["input_ids"].shape[1]:].tolist())
