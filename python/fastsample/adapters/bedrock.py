"""Amazon Bedrock: an InferenceConfiguration (Converse API), alone or inside a Converse request
with additionalModelRequestFields, or a model family's native InvokeModel body
(bedrock_invoke.py)."""
from __future__ import annotations

from typing import Any, Mapping

from ..requests.sampling_params import MAX_TOKENS, SamplingParams
from .bedrock_invoke import family, from_invoke_body
from ._fields import (check_known, drop_none, first_present, int_field, mapping, reject_guided,
                      source_range, strings)

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
    0), maxTokens >= 1, at most 4 stopSequences.

    A native InvokeModel body (Anthropic Claude, Meta Llama, Mistral, Amazon Titan Text or
    Amazon Nova: told apart by their own fields, see fastsample.adapters.bedrock_invoke) is
    read with that family's names and ranges:
    from_bedrock({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512,
    "temperature": 0.5, "top_k": 250, "messages": [...]})."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f"{SOURCE}: expected a dict, got {type(cfg).__name__}")
    reject_guided(SOURCE, cfg)
    kind = family(cfg)
    if kind is not None:
        return from_invoke_body(cfg, kind, lenient)
    is_request = any(k in cfg for k in REQUEST_FIELDS)
    if is_request:
        check_known(SOURCE, cfg, REQUEST_FIELDS, lenient)
        inference = mapping(SOURCE, "inferenceConfig",
                            first_present(cfg, "inferenceConfig", "inference_config", default={}))
        additional = dict(mapping(SOURCE, "additionalModelRequestFields", first_present(
            cfg, "additionalModelRequestFields", "additional_model_request_fields", default={})))
    else:
        inference, additional = cfg, {}
    reject_guided(SOURCE, inference, additional)
    check_known(f"{SOURCE} inferenceConfig", inference, INFERENCE_FIELDS, lenient)
    temperature = source_range(SOURCE, "temperature", first_present(inference, "temperature", default=1.0), 0.0, 1.0)
    top_p = source_range(SOURCE, "topP", first_present(inference, "topP", "top_p", default=1.0), 0.0, 1.0)
    if top_p == 0:
        raise ValueError(f"{SOURCE}: topP=0 is out of range; allowed (0, 1] (for greedy decoding "
                         "pass temperature=0)")
    stop_name = "stop_sequences" if inference.get("stopSequences") is None and \
        inference.get("stop_sequences") is not None else "stopSequences"
    stop = strings(SOURCE, stop_name, inference.get(stop_name), MAX_STOP_SEQUENCES)
    max_name = "max_tokens" if inference.get("maxTokens") is None and \
        inference.get("max_tokens") is not None else "maxTokens"
    max_tokens = int_field(SOURCE, max_name, inference.get(max_name), MAX_TOKENS)
    k_name = "topK" if additional.get("top_k") is None and additional.get("topK") is not None \
        else "top_k"
    top_k = int_field(SOURCE, k_name, additional.get(k_name))
    metadata = {k: v for k, v in additional.items() if k not in ("top_k", "topK")}
    if is_request:
        metadata.update({k: v for k, v in cfg.items() if k in ("max_parallel_requests", "timeout", "modelId")})
    return SamplingParams(**drop_none(dict(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=max_tokens,
        stop=stop,
        metadata=metadata,
    )))
