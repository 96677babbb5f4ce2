"""The decode loop: Sampler (per-step object over a changing batch of requests) and generate
(a complete loop for transformers causal LMs)."""
