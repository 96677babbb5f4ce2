"""One fused call on one batch of logits: sample, process_logits (sampling) and
prompt_logprobs (scoring)."""
