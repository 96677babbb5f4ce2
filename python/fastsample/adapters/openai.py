"""OpenAI-style chat/completions bodies: OpenAI, NVIDIA NIM (with its `nvext` extension) and
vLLM's OpenAI-compatible server (with its extra sampling fields)."""
from __future__ import annotations

from typing import Any, Mapping

from .._sampling_params import SamplingParams
from ._fields import check_known, drop_none, first_present, int_field, metadata_of, source_range

SOURCE = "OpenAI"

SAMPLING_FIELDS = {
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
    "presence_penalty", "frequency_penalty", "repetition_penalty", "seed", "stop",
    "stop_token_ids", "ignore_eos", "min_tokens", "logprobs", "top_logprobs", "prompt_logprobs",
    "logit_bias", "allowed_token_ids",
}
STRUCTURED_FIELDS = {
    "response_format", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "structured_outputs",
}
# Part of the request, not of sampling: kept as metadata.
METADATA_FIELDS = {
    "model", "messages", "prompt", "stream", "stream_options", "user", "n", "best_of", "tools",
    "tool_choice", "parallel_tool_calls", "functions", "function_call", "metadata", "store",
    "service_tier", "modalities", "audio", "reasoning_effort", "echo", "suffix",
    "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
    "add_generation_prompt", "chat_template", "chat_template_kwargs", "max_parallel_requests",
    "timeout", "prediction", "web_search_options",
}
NVEXT_FIELDS = {"top_k", "repetition_penalty", "min_tokens", "ignore_eos", "stop_token_ids",
                "min_p", "guided_json", "guided_regex", "guided_choice", "guided_grammar"}


def from_openai(body: Mapping[str, Any], *, lenient: bool = False) -> SamplingParams:
    """SamplingParams from an OpenAI / NIM / vLLM chat-completions (or completions) body.

    Enforces OpenAI's documented ranges: temperature [0, 2], top_p [0, 1] (0 itself is rejected:
    use temperature 0 for greedy), presence/frequency penalty [-2, 2], logit_bias values
    [-100, 100], top_logprobs [0, 20]. top_k -1 means all tokens. `logprobs: true` without
    top_logprobs asks for the sampled token's logprob only (logprobs=0). `extra_body` (as the
    OpenAI Python client takes it) and NIM's `nvext` are merged into the body. Unknown fields
    raise ValueError naming the nearest known ones, unless lenient=True.
    """
    body = dict(body)
    for nested in ("extra_body",):
        extra = body.pop(nested, None) or {}
        if not isinstance(extra, Mapping):
            raise TypeError(f"{SOURCE}: {nested} must be a dict, got {type(extra).__name__}")
        body.update(extra)
    nvext = body.pop("nvext", None) or {}
    check_known(f"{SOURCE} nvext", nvext, NVEXT_FIELDS, lenient)
    body.update({k: v for k, v in nvext.items() if k in NVEXT_FIELDS})
    check_known(SOURCE, body, SAMPLING_FIELDS | STRUCTURED_FIELDS | METADATA_FIELDS, lenient)

    temperature = source_range(SOURCE, "temperature", first_present(body, "temperature", default=1.0), 0.0, 2.0)
    top_p = source_range(SOURCE, "top_p", first_present(body, "top_p", default=1.0), 0.0, 1.0)
    if top_p == 0:
        raise ValueError(f"{SOURCE}: top_p=0 is out of range; allowed (0, 1] (for greedy "
                         "decoding pass temperature=0)")
    penalties = {}
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) is not None:
            penalties[name] = source_range(SOURCE, name, body[name], -2.0, 2.0)
    logit_bias = body.get("logit_bias")
    if logit_bias:
        for token, bias in dict(logit_bias).items():
            source_range(SOURCE, f"logit_bias[{token!r}]", bias, -100.0, 100.0)
    logprobs = None
    want_logprobs = body.get("logprobs")
    if isinstance(want_logprobs, bool):  # chat completions: a flag plus top_logprobs
        top = int_field(SOURCE, "top_logprobs", body.get("top_logprobs"))
        if top is not None and not want_logprobs:
            raise ValueError(f"{SOURCE}: top_logprobs={top} needs logprobs=true")
        logprobs = (top or 0) if want_logprobs else None
    elif want_logprobs is not None:  # legacy completions: the count itself
        logprobs = int_field(SOURCE, "logprobs", want_logprobs)
    stop = body.get("stop")
    structured = {k: body[k] for k in STRUCTURED_FIELDS if body.get(k) is not None}
    if structured.get("response_format", {}).get("type") == "text":
        structured.pop("response_format")
    return SamplingParams(**drop_none(dict(
        temperature=temperature,
        top_p=top_p,
        top_k=body.get("top_k"),
        min_p=body.get("min_p"),
        repetition_penalty=body.get("repetition_penalty"),
        **penalties,
        logit_bias=logit_bias,
        allowed_token_ids=body.get("allowed_token_ids"),
        seed=body.get("seed"),
        max_tokens=first_present(body, "max_completion_tokens", "max_tokens"),
        min_tokens=body.get("min_tokens"),
        ignore_eos=body.get("ignore_eos"),
        stop=stop,
        stop_token_ids=body.get("stop_token_ids"),
        logprobs=logprobs,
        prompt_logprobs=body.get("prompt_logprobs"),
        structured_output=structured or None,
        metadata=metadata_of(body, METADATA_FIELDS),
    )))
