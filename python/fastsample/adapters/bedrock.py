"""Amazon Bedrock: an InferenceConfiguration (Converse API), alone or inside a Converse request
with additionalModelRequestFields."""
from __future__ import annotations

from typing import Any, Mapping

from .._sampling_params import SamplingParams
from ._fields import check_known, drop_none, first_present, int_field, source_range

SOURCE = "Bedrock"

INFERENCE_FIELDS = {"maxTokens", "max_tokens", "temperature", "topP", "top_p", "stopSequences",
                    "stop_sequences"}
REQUEST_FIELDS = {"inferenceConfig", "inference_config", "additionalModelRequestFields",
                  "additional_model_request_fields", "modelId", "messages", "system",
                  "toolConfig", "guardrailConfig", "performanceConfig", "promptVariables",
                  "requestMetadata", "additionalModelResponseFieldPaths",
                  "max_parallel_requests", "timeout"}
ADDITIONAL_FIELDS = {"top_k", "topK", "max_parallel_requests", "timeout"}
MAX_STOP_SEQUENCES = 4


def from_bedrock(cfg: Mapping[str, Any], *, lenient: bool = False) -> SamplingParams:
    """SamplingParams from a Bedrock InferenceConfiguration dict (camelCase as in the API, or
    snake_case), or from a Converse request holding `inferenceConfig` and
    `additionalModelRequestFields` (where top_k / topK is read; other model-specific fields are
    kept as metadata). Ranges: temperature and topP in [0, 1] (topP 0 rejected: use temperature
    0), maxTokens >= 1, at most 4 stopSequences."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f"{SOURCE}: expected a dict, got {type(cfg).__name__}")
    is_request = any(k in cfg for k in REQUEST_FIELDS)
    if is_request:
        check_known(SOURCE, cfg, REQUEST_FIELDS, lenient)
        inference = first_present(cfg, "inferenceConfig", "inference_config", default={})
        additional = dict(first_present(cfg, "additionalModelRequestFields",
                                        "additional_model_request_fields", default={}))
    else:
        inference, additional = cfg, {}
    check_known(f"{SOURCE} inferenceConfig", inference, INFERENCE_FIELDS, lenient)
    temperature = source_range(SOURCE, "temperature", first_present(inference, "temperature", default=1.0), 0.0, 1.0)
    top_p = source_range(SOURCE, "topP", first_present(inference, "topP", "top_p", default=1.0), 0.0, 1.0)
    if top_p == 0:
        raise ValueError(f"{SOURCE}: topP=0 is out of range; allowed (0, 1] (for greedy decoding "
                         "pass temperature=0)")
    stop = first_present(inference, "stopSequences", "stop_sequences", default=[])
    if isinstance(stop, str):
        stop = [stop]
    if len(stop) > MAX_STOP_SEQUENCES:
        raise ValueError(f"{SOURCE}: stopSequences has {len(stop)} entries; Bedrock allows at most "
                         f"{MAX_STOP_SEQUENCES}")
    top_k = int_field(SOURCE, "top_k", first_present(additional, "top_k", "topK"))
    metadata = {k: v for k, v in additional.items() if k not in ("top_k", "topK")}
    if is_request:
        metadata.update({k: v for k, v in cfg.items() if k in ("max_parallel_requests", "timeout", "modelId")})
    return SamplingParams(**drop_none(dict(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=first_present(inference, "maxTokens", "max_tokens"),
        stop=stop,
        metadata=metadata,
    )))
