"""The request layer: what a caller asks for, validated once (fastsample.adapters map other
systems' request styles onto it).

- arguments:       validation of sample()/process_logits() arguments (ranges, dtypes, shapes)
- edit_arguments:  the stage 1-3 arguments (penalties, masks, logit_bias) as the kernels read them
- sampling_params: SamplingParams, every per-request field of the contract
- distributions:   parameters drawn per request from a distribution (Uniform, Manual)
- sampling_batch:  SamplingBatch, a batch of SamplingParams as per-row tensors
"""
