"""OpenAI-style chat/completions bodies: OpenAI, NVIDIA NIM (with its `nvext` extension),
vLLM's OpenAI-compatible server (with its extra sampling fields), llama.cpp's server
(`top_n_sigma`, `typical_p`, `xtc_threshold`, `xtc_probability`, `mirostat`, `mirostat_tau`,
`mirostat_eta` and DRY's `dry_*` fields, `dry_sequence_breakers` as token-id sequences: none
when absent, as llama.cpp's default breakers are strings, which need the tokenizer) and the
servers that add transformers' `epsilon_cutoff`, `eta_cutoff` and `no_repeat_ngram_size`
(text-generation-webui, Aphrodite)."""
from __future__ import annotations

from typing import Any, Mapping

from ..requests import decoding
from ..requests.mirostat import MIROSTAT
from ..requests.sampling_params import (DRY_ALLOWED_LENGTH, DRY_FIELDS, DRY_PENALTY_LAST_N,
                                        LOGPROBS, MAX_TOKENS, MIN_TOKENS, NO_REPEAT_NGRAM_SIZE,
                                        SamplingParams)
from ._fields import (bool_field, check_known, drop_none, first_present, int_field, mapping,
                      metadata_of, source_range, strings, token_ids)

SOURCE = "OpenAI"

SAMPLING_FIELDS = {
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p",
    "presence_penalty", "frequency_penalty", "repetition_penalty", "seed", "stop",
    "stop_token_ids", "ignore_eos", "min_tokens", "logprobs", "top_logprobs", "prompt_logprobs",
    "logit_bias", "allowed_token_ids", "top_n_sigma", "xtc_threshold", "xtc_probability",
    "typical_p", "epsilon_cutoff", "eta_cutoff", "no_repeat_ngram_size", *DRY_FIELDS,
    "mirostat", "mirostat_tau", "mirostat_eta", "n", "best_of",
}
STRUCTURED_FIELDS = {
    "response_format", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "structured_outputs",
}
# Part of the request, not of sampling: kept as metadata.
METADATA_FIELDS = {
    "model", "messages", "prompt", "stream", "stream_options", "user", "tools",
    "tool_choice", "parallel_tool_calls", "functions", "function_call", "metadata", "store",
    "service_tier", "modalities", "audio", "reasoning_effort", "echo", "suffix",
    "skip_special_tokens", "spaces_between_special_tokens", "include_stop_str_in_output",
    "add_generation_prompt", "chat_template", "chat_template_kwargs", "max_parallel_requests",
    "timeout", "prediction", "web_search_options",
}
NVEXT_FIELDS = {"top_k", "repetition_penalty", "min_tokens", "ignore_eos", "stop_token_ids",
                "min_p", "guided_json", "guided_regex", "guided_choice", "guided_grammar"}
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


def _structured(body: Mapping[str, Any]) -> dict:
    """The structured-output fields, checked for the types their systems define."""
    found = {k: body[k] for k in STRUCTURED_FIELDS if body.get(k) is not None}
    fmt = found.get("response_format")
    if fmt is not None:
        mapping(SOURCE, "response_format", fmt)
        kind = fmt.get("type")
        if kind not in RESPONSE_FORMATS:
            raise ValueError(f"{SOURCE}: response_format type {kind!r} is not one of "
                             f"{list(RESPONSE_FORMATS)}")
        if kind == "json_schema":
            mapping(SOURCE, "response_format.json_schema", fmt.get("json_schema"))
            if fmt.get("json_schema") is None:
                raise ValueError(f"{SOURCE}: response_format json_schema needs a 'json_schema' "
                                 "object holding the schema")
        if kind == "text":
            found.pop("response_format")
    for name in ("guided_regex", "guided_grammar"):
        if name in found and not isinstance(found[name], str):
            raise TypeError(f"{SOURCE}: {name} must be a string, got "
                            f"{type(found[name]).__name__}")
    if "guided_choice" in found:
        strings(SOURCE, "guided_choice", found["guided_choice"])
    if "guided_json" in found and not isinstance(found["guided_json"], (str, Mapping, type)):
        raise TypeError(f"{SOURCE}: guided_json must be a JSON schema (a string or a dict) or a "
                        f"pydantic model class, got {type(found['guided_json']).__name__}")
    if "structured_outputs" in found:
        mapping(SOURCE, "structured_outputs", found["structured_outputs"])
    return found


def _logprobs(body: Mapping[str, Any]):
    """Chat completions: `logprobs` true/false plus `top_logprobs` 0..20; legacy completions:
    `logprobs` the count itself. Errors name the caller's field."""
    want = body.get("logprobs")
    top = int_field(SOURCE, "top_logprobs", body.get("top_logprobs"), LOGPROBS)
    if isinstance(want, bool) or want is None:
        if top is not None and not want:
            raise ValueError(f"{SOURCE}: top_logprobs={top} needs logprobs=true")
        return (top or 0) if want else None
    if top is not None:
        raise ValueError(f"{SOURCE}: top_logprobs goes with logprobs=true (chat completions); "
                         f"a count in logprobs ({want!r}) is the legacy completions form")
    return int_field(SOURCE, "logprobs", want, LOGPROBS)


def from_openai(body: Mapping[str, Any], *, lenient: bool = False) -> SamplingParams:
    """SamplingParams from an OpenAI / NIM / vLLM chat-completions (or completions) body.

    Enforces OpenAI's documented ranges: temperature [0, 2], top_p [0, 1] (0 itself is rejected:
    use temperature 0 for greedy), presence/frequency penalty [-2, 2], logit_bias values
    [-100, 100], top_logprobs [0, 20] (with logprobs=true). top_k -1 means all tokens.
    `logprobs: true` without top_logprobs asks for the sampled token's logprob only
    (logprobs=0). `extra_body` (as the OpenAI Python client takes it) and NIM's `nvext` are
    merged into the body. Unknown fields raise ValueError naming the nearest known ones (unless
    lenient=True). n and best_of (>= n: the n of best_of samples with the highest mean logprob
    per token) are run by fastsample.generate.
    Errors name the body's own fields (max_completion_tokens, top_logprobs, ...).
    """
    mapping(SOURCE, "the request body", body)
    body = dict(body)
    for nested in ("extra_body",):
        extra = mapping(SOURCE, nested, body.pop(nested, None)) or {}
        body.update(extra)
    nvext = mapping(SOURCE, "nvext", body.pop("nvext", None)) or {}
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
    logit_bias = mapping(SOURCE, "logit_bias", body.get("logit_bias"))
    for token, bias in (logit_bias or {}).items():
        source_range(SOURCE, f"logit_bias[{token!r}]", bias, -100.0, 100.0)
    logprobs = _logprobs(body)
    max_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    max_tokens = int_field(SOURCE, max_name, body.get(max_name), MAX_TOKENS)
    min_tokens = int_field(SOURCE, "min_tokens", body.get("min_tokens"), MIN_TOKENS)
    if min_tokens is not None and max_tokens is not None and min_tokens > max_tokens:
        raise ValueError(f"{SOURCE}: min_tokens={min_tokens} is out of range; allowed: 0 <= "
                         f"min_tokens <= {max_name} ({max_tokens})")
    n = int_field(SOURCE, "n", body.get("n"), decoding.SEQUENCES)
    best_of = int_field(SOURCE, "best_of", body.get("best_of"), decoding.SEQUENCES)
    if best_of is not None and best_of < (n or 1):
        raise ValueError(f"{SOURCE}: best_of={best_of} is out of range; allowed: best_of >= n "
                         f"({n or 1})")
    metadata = metadata_of(body, METADATA_FIELDS)
    return SamplingParams(**drop_none(dict(
        temperature=temperature,
        top_p=top_p,
        top_k=body.get("top_k"),
        min_p=body.get("min_p"),
        top_n_sigma=body.get("top_n_sigma"),
        typical_p=body.get("typical_p"),
        epsilon_cutoff=body.get("epsilon_cutoff"),
        eta_cutoff=body.get("eta_cutoff"),
        xtc_threshold=body.get("xtc_threshold"),
        xtc_probability=body.get("xtc_probability"),
        repetition_penalty=body.get("repetition_penalty"),
        **penalties,
        no_repeat_ngram_size=int_field(SOURCE, "no_repeat_ngram_size",
                                       body.get("no_repeat_ngram_size"), NO_REPEAT_NGRAM_SIZE),
        dry_multiplier=body.get("dry_multiplier"),
        dry_base=body.get("dry_base"),
        dry_allowed_length=int_field(SOURCE, "dry_allowed_length",
                                     body.get("dry_allowed_length"), DRY_ALLOWED_LENGTH),
        dry_penalty_last_n=int_field(SOURCE, "dry_penalty_last_n",
                                     body.get("dry_penalty_last_n"), DRY_PENALTY_LAST_N),
        dry_sequence_breakers=body.get("dry_sequence_breakers"),
        mirostat=int_field(SOURCE, "mirostat", body.get("mirostat"), MIROSTAT),
        mirostat_tau=body.get("mirostat_tau"),
        mirostat_eta=body.get("mirostat_eta"),
        logit_bias=logit_bias,
        allowed_token_ids=token_ids(SOURCE, "allowed_token_ids", body.get("allowed_token_ids")),
        seed=body.get("seed"),
        max_tokens=max_tokens,
        min_tokens=min_tokens,
        ignore_eos=bool_field(SOURCE, "ignore_eos", body.get("ignore_eos")),
        stop=strings(SOURCE, "stop", body.get("stop")),
        stop_token_ids=token_ids(SOURCE, "stop_token_ids", body.get("stop_token_ids")),
        logprobs=logprobs,
        prompt_logprobs=int_field(SOURCE, "prompt_logprobs", body.get("prompt_logprobs"),
                                  LOGPROBS),
        structured_output=_structured(body) or None,
        n=n,
        best_of=best_of,
        metadata=metadata,
    )))
