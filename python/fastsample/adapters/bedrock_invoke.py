"""Amazon Bedrock InvokeModel bodies: each model family's native request, as its Bedrock model
parameters page documents it (from_bedrock hands them here).

| family | recognized by | fields read (range) |
|---|---|---|
| Anthropic Claude (Messages) | `anthropic_version` | max_tokens (>= 1), temperature [0, 1], top_p [0, 1], top_k [0, 500] (0 = off), stop_sequences |
| Meta Llama | `max_gen_len`, or `prompt` alone | max_gen_len [1, 2048], temperature [0, 1], top_p [0, 1] |
| Mistral | `prompt` with `max_tokens`, `top_k` or `stop` | max_tokens (>= 1), temperature [0, 1], top_p [0, 1], top_k [1, 200], stop (<= 10) |
| Amazon Titan Text | `inputText` / `textGenerationConfig` | textGenerationConfig: maxTokenCount (>= 1), temperature [0, 1], topP [0, 1], stopSequences |
| Amazon Nova | `schemaVersion`, or `inferenceConfig` holding `max_new_tokens` / `top_k` | inferenceConfig: max_new_tokens (>= 1), temperature [0, 1], top_p [0, 1], top_k (>= 0), stopSequences |

The prompt or messages are the caller's to tokenize: they are checked to be there by name only.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..requests.arguments import Range
from ..requests.sampling_params import MAX_TOKENS, SamplingParams
from ._fields import (check_known, drop_none, first_present, int_field, mapping, source_range,
                      strings)

SOURCE = "Bedrock InvokeModel"

# Each family's body: the fields it defines (all accepted), and which of them are sampling.
ANTHROPIC_FIELDS = {"anthropic_version", "anthropic_beta", "max_tokens", "temperature", "top_p",
                    "top_k", "stop_sequences", "messages", "system", "tools", "tool_choice",
                    "thinking", "metadata"}
LLAMA_FIELDS = {"prompt", "max_gen_len", "temperature", "top_p", "images"}
MISTRAL_FIELDS = {"prompt", "max_tokens", "temperature", "top_p", "top_k", "stop"}
TITAN_FIELDS = {"inputText", "textGenerationConfig"}
TITAN_CONFIG_FIELDS = {"maxTokenCount", "temperature", "topP", "stopSequences"}
NOVA_FIELDS = {"schemaVersion", "messages", "system", "inferenceConfig", "toolConfig"}
NOVA_CONFIG_FIELDS = {"max_new_tokens", "temperature", "top_p", "top_k", "stopSequences",
                      "reasoningConfig"}


def family(body: Mapping[str, Any]) -> Optional[str]:
    """Which native InvokeModel body this is, or None (a Converse request or an
    InferenceConfiguration)."""
    if "anthropic_version" in body:
        return "Anthropic"
    if "inputText" in body or "textGenerationConfig" in body:
        return "Titan"
    inference = body.get("inferenceConfig")
    if "schemaVersion" in body or (isinstance(inference, Mapping) and
                                   ("max_new_tokens" in inference or "top_k" in inference)):
        return "Nova"
    if "prompt" in body:
        if "max_gen_len" in body or not ({"max_tokens", "top_k", "stop"} & set(body)):
            return "Llama"
        return "Mistral"
    if "max_gen_len" in body:
        return "Llama"
    return None


def from_invoke_body(body: Mapping[str, Any], kind: str, lenient: bool) -> SamplingParams:
    """SamplingParams from a native InvokeModel body of family `kind` (see `family`)."""
    source = f"{SOURCE} ({kind})"
    if kind == "Anthropic":
        check_known(source, body, ANTHROPIC_FIELDS, lenient)
        fields, k_range = body, Range("0 <= top_k <= 500", 0, 500, integer=True)
        max_name, stop_name, max_stops = "max_tokens", "stop_sequences", None
    elif kind == "Llama":
        check_known(source, body, LLAMA_FIELDS, lenient)
        fields, k_range = body, None
        max_name, stop_name, max_stops = "max_gen_len", None, None
    elif kind == "Mistral":
        check_known(source, body, MISTRAL_FIELDS, lenient)
        fields, k_range = body, Range("1 <= top_k <= 200", 1, 200, integer=True)
        max_name, stop_name, max_stops = "max_tokens", "stop", 10
    elif kind == "Titan":
        check_known(source, body, TITAN_FIELDS, lenient)
        fields = mapping(source, "textGenerationConfig", body.get("textGenerationConfig")) or {}
        check_known(f"{source} textGenerationConfig", fields, TITAN_CONFIG_FIELDS, lenient)
        k_range = None
        max_name, stop_name, max_stops = "maxTokenCount", "stopSequences", None
    else:
        check_known(source, body, NOVA_FIELDS, lenient)
        fields = mapping(source, "inferenceConfig", body.get("inferenceConfig")) or {}
        check_known(f"{source} inferenceConfig", fields, NOVA_CONFIG_FIELDS, lenient)
        k_range = Range("an integer >= 0", 0, 2**31 - 1, integer=True)
        max_name, stop_name, max_stops = "max_new_tokens", "stopSequences", None
    top_p_name = "topP" if kind == "Titan" else "top_p"
    temperature = source_range(source, "temperature", first_present(fields, "temperature",
                                                                    default=1.0), 0.0, 1.0)
    top_p = source_range(source, top_p_name, first_present(fields, top_p_name, default=1.0),
                         0.0, 1.0)
    if top_p == 0:
        raise ValueError(f"{source}: {top_p_name}=0 is out of range; allowed (0, 1] (for greedy "
                         f"decoding pass temperature=0)")
    max_range = Range("1 <= max_gen_len <= 2048", 1, 2048, integer=True) \
        if kind == "Llama" else MAX_TOKENS
    max_tokens = int_field(source, max_name, fields.get(max_name), max_range)
    top_k = int_field(source, "top_k", fields.get("top_k"), k_range) if k_range else None
    stop = strings(source, stop_name, fields.get(stop_name), max_stops) if stop_name else None
    return SamplingParams(**drop_none(dict(temperature=temperature, top_p=top_p, top_k=top_k,
                                           max_tokens=max_tokens, stop=stop)))
