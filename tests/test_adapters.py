"""Adapters on the example request bodies the OpenAI / NIM / vLLM, transformers, Bedrock and
Llama Stack documentation shows, plus each source's range boundaries and typo'd fields."""
import re

import numpy as np
import pytest
import torch

import fastsample
from fastsample import Manual, SamplingParams, Uniform

MESSAGES = [{"role": "user", "content": "Hello!"}]


# --- OpenAI / NIM / vLLM ---------------------------------------------------------------------

def test_openai_chat_example_defaults():
    p = fastsample.from_openai({"model": "gpt-4o", "messages": MESSAGES})
    assert (p.temperature, p.top_p, p.top_k, p.logprobs) == (1.0, 1.0, 0, None)
    assert p.metadata["model"] == "gpt-4o"


def test_openai_logprobs_example():
    p = fastsample.from_openai({"model": "gpt-4o", "messages": MESSAGES, "logprobs": True,
                                "top_logprobs": 2})
    assert p.logprobs == 2
    assert fastsample.from_openai({"messages": MESSAGES, "logprobs": True}).logprobs == 0
    with pytest.raises(ValueError, match="top_logprobs=2 needs logprobs=true"):
        fastsample.from_openai({"messages": MESSAGES, "logprobs": False, "top_logprobs": 2})


def test_nim_example_with_nvext():
    body = {"model": "meta/llama3-8b-instruct", "messages": MESSAGES, "top_p": 1, "n": 1,
            "max_tokens": 15, "stream": False, "frequency_penalty": 0.0, "stop": ["hello"],
            "nvext": {"top_k": 40, "repetition_penalty": 1.1,
                      "guided_json": {"type": "object"}}}
    p = fastsample.from_openai(body)
    assert (p.max_tokens, p.top_k, p.repetition_penalty, p.stop) == (15, 40, 1.1, ("hello",))
    assert p.structured_output["guided_json"] == {"type": "object"}
    assert p.n == 1 and p.metadata["stream"] is False


def test_vllm_extra_body_example():
    body = {"model": "m", "messages": MESSAGES, "temperature": 0.8, "top_p": 0.95, "seed": 7,
            "stop": "###", "logit_bias": {"50256": -100},
            "extra_body": {"top_k": -1, "min_p": 0.05, "repetition_penalty": 1.05,
                           "min_tokens": 2, "ignore_eos": True, "stop_token_ids": [2],
                           "guided_choice": ["yes", "no"], "prompt_logprobs": 1}}
    p = fastsample.from_openai(body)
    assert (p.temperature, p.top_p, p.top_k, p.min_p, p.seed) == (0.8, 0.95, -1, 0.05, 7)
    assert (p.min_tokens, p.ignore_eos, p.stop_token_ids, p.stop) == (2, True, (2,), ("###",))
    assert dict(p.logit_bias) == {50256: -100.0} and p.prompt_logprobs == 1
    assert p.structured_output["guided_choice"] == ["yes", "no"]


@pytest.mark.parametrize("field,good,bad", [
    ("temperature", [0, 2], [-0.01, 2.01]),
    ("top_p", [1e-6, 1], [0, 1.01]),
    ("presence_penalty", [-2, 2], [-2.01, 2.01]),
    ("frequency_penalty", [-2, 2], [-2.5, 3]),
])
def test_openai_ranges(field, good, bad):
    for v in good:
        fastsample.from_openai({field: v})
    for v in bad:
        with pytest.raises(ValueError, match=field):
            fastsample.from_openai({field: v})


def test_openai_logit_bias_range_and_typo():
    fastsample.from_openai({"logit_bias": {"1": 100, "2": -100}})
    with pytest.raises(ValueError, match="logit_bias"):
        fastsample.from_openai({"logit_bias": {"1": 100.5}})
    with pytest.raises(ValueError, match="'top_pp'.*did you mean 'top_p'"):
        fastsample.from_openai({"top_pp": 0.9})
    p = fastsample.from_openai({"top_pp": 0.9, "temperature": 0.1}, lenient=True)
    assert p.temperature == 0.1 and p.top_p == 1.0


def test_openai_accepts_distributions_and_keeps_generator_metadata():
    body = {"temperature": {"distribution_type": "uniform", "params": {"low": 0.5, "high": 1.5}},
            "top_p": {"distribution_type": "manual", "params": {"values": [0.9, 1.0]}},
            "max_parallel_requests": 4, "timeout": 30}
    p = fastsample.from_openai(body)
    assert p.temperature == Uniform(0.5, 1.5) and p.top_p == Manual([0.9, 1.0])
    assert p.metadata["max_parallel_requests"] == 4 and p.metadata["timeout"] == 30
    with pytest.raises(ValueError, match="temperature"):
        fastsample.from_openai({"temperature": {"distribution_type": "uniform",
                                                "params": {"low": 0.5, "high": 2.5}}})


# --- transformers ------------------------------------------------------------------------------

LLAMA_31_GENERATION_CONFIG = {"bos_token_id": 128000, "do_sample": True,
                              "eos_token_id": [128001, 128008, 128009], "temperature": 0.6,
                              "top_p": 0.9, "transformers_version": "4.42.3"}


def test_hf_llama_generation_config_json():
    p = fastsample.from_hf(LLAMA_31_GENERATION_CONFIG)
    # top_k is unset there, so transformers' default 50 applies.
    assert (p.temperature, p.top_p, p.top_k) == (0.6, 0.9, 50)
    assert p.eos_token_ids == (128001, 128008, 128009)
    assert p.max_tokens is None and p.metadata["max_length"] == 20


def test_hf_do_sample_false_is_greedy_whatever_else():
    p = fastsample.from_hf({"do_sample": False, "temperature": 0.7, "top_k": 5, "top_p": 0.5})
    assert p.greedy and p.top_k == 0 and p.top_p == 1.0
    assert fastsample.from_hf({}).greedy  # transformers' default: do_sample=False


def test_hf_generation_config_object():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GenerationConfig(do_sample=True, top_k=20, min_p=0.1, max_new_tokens=32,
                                        min_new_tokens=4, repetition_penalty=1.3,
                                        suppress_tokens=[5, 6], bad_words_ids=[[9]],
                                        eos_token_id=2)
    p = fastsample.from_hf(cfg)
    assert (p.top_k, p.min_p, p.max_tokens, p.min_tokens) == (20, 0.1, 32, 4)
    assert p.repetition_penalty == 1.3 and p.banned_token_ids == (5, 6, 9)
    assert p.eos_token_ids == (2,)


@pytest.mark.parametrize("field,value", [("num_beams", 4), ("num_beam_groups", 2)])
def test_hf_unsupported_fields_are_not_silently_dropped(field, value):
    """Beam sampling (num_beams with do_sample) and diverse beams."""
    with pytest.raises(ValueError, match=field):
        fastsample.from_hf({"do_sample": True, field: value})
    p = fastsample.from_hf({"do_sample": True, field: value}, lenient=True)
    assert field in p.metadata["ignored"][0]


@pytest.mark.parametrize("field,value", [
    ("forced_bos_token_id", 1), ("forced_eos_token_id", 2),
    ("exponential_decay_length_penalty", (5, 1.5)), ("top_h", 0.4),
    ("encoder_repetition_penalty", 1.2), ("encoder_no_repeat_ngram_size", 2),
    ("guidance_scale", 1.5), ("diversity_penalty", 0.5),
    ("watermarking_config", {"bias": 2.0}),
    ("remove_invalid_values", True), ("token_healing", True), ("dola_layers", "high")])
def test_hf_score_changing_fields_are_refused_not_kept_as_metadata(field, value):
    with pytest.raises(ValueError, match=field):
        fastsample.from_hf({"do_sample": True, field: value})
    p = fastsample.from_hf({"do_sample": True, field: value}, lenient=True)
    assert p.metadata["ignored"] == [f"{field}={value!r}"] and field not in p.metadata
    # Their off values (transformers' own) are accepted.
    off = fastsample.adapters.hf.SCORE_FIELDS_OFF[field]
    for v in off:
        assert fastsample.from_hf({"do_sample": True, field: v}).metadata.get("ignored") is None


def test_hf_bad_words_never_ban_eos():
    p = fastsample.from_hf({"bad_words_ids": [[2], [5]], "eos_token_id": [2, 3]})
    assert p.banned_token_ids == (5,)
    assert fastsample.from_hf({"bad_words_ids": [[2]], "eos_token_id": 2}).banned_token_ids \
        is None
    # renormalize_logits changes no probability: metadata.
    assert fastsample.from_hf({"renormalize_logits": True}).metadata["renormalize_logits"]


def test_hf_seed_and_typo():
    assert fastsample.from_hf({"seed": -1}).seed is None
    assert fastsample.from_hf({"seed": 5}).seed == 5
    with pytest.raises(ValueError, match="'temprature'.*'temperature'"):
        fastsample.from_hf({"temprature": 0.5})
    with pytest.raises(ValueError, match="top_p"):
        fastsample.from_hf({"do_sample": True, "top_p": 1.5})


# --- Bedrock -----------------------------------------------------------------------------------

def test_bedrock_converse_example():
    request = {"modelId": "anthropic.claude-3-haiku", "messages": MESSAGES,
               "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9,
                                   "stopSequences": ["\n\nHuman:"]},
               "additionalModelRequestFields": {"top_k": 200}}
    p = fastsample.from_bedrock(request)
    assert (p.max_tokens, p.temperature, p.top_p, p.top_k) == (512, 0.5, 0.9, 200)
    assert p.stop == ("\n\nHuman:",)


def test_bedrock_snake_case_and_ranges():
    p = fastsample.from_bedrock({"max_tokens": 100, "temperature": 1.0, "top_p": 1.0,
                                 "stop_sequences": ["a"]})
    assert (p.max_tokens, p.temperature, p.stop) == (100, 1.0, ("a",))
    for bad in ({"temperature": 1.01}, {"temperature": -0.1}, {"topP": 1.2}, {"topP": 0},
                {"maxTokens": 0}, {"stopSequences": list("abcde")}):
        with pytest.raises(ValueError):
            fastsample.from_bedrock(bad)
    with pytest.raises(ValueError, match="'maxToken'.*'maxTokens'"):
        fastsample.from_bedrock({"maxToken": 10})


# --- Llama Stack -------------------------------------------------------------------------------

def test_llama_stack_object_form():
    p = fastsample.from_llama_stack({"strategy": {"type": "top_p", "temperature": 0.7,
                                                  "top_p": 0.95}, "max_tokens": 512})
    assert (p.temperature, p.top_p, p.max_tokens) == (0.7, 0.95, 512)
    assert fastsample.from_llama_stack({"strategy": {"type": "greedy"}}).greedy
    p = fastsample.from_llama_stack({"strategy": {"type": "top_k", "top_k": 5},
                                     "repetition_penalty": 1.2})
    assert (p.top_k, p.temperature, p.repetition_penalty) == (5, 1.0, 1.2)


def test_llama_stack_flat_form():
    p = fastsample.from_llama_stack({"strategy": "greedy", "temperature": 0.0, "top_p": 0.95,
                                     "top_k": 0, "repetition_penalty": 1.0, "max_tokens": 0})
    assert p.greedy and p.max_tokens is None
    p = fastsample.from_llama_stack({"strategy": "top_p", "temperature": 0.9, "top_p": 0.8})
    assert (p.temperature, p.top_p) == (0.9, 0.8)


def test_llama_stack_rejections():
    with pytest.raises(ValueError, match="strategy 'beam'"):
        fastsample.from_llama_stack({"strategy": {"type": "beam"}})
    with pytest.raises(ValueError, match="'topp'"):
        fastsample.from_llama_stack({"strategy": {"type": "top_p", "topp": 0.9}})
    with pytest.raises(ValueError, match="top_p"):
        fastsample.from_llama_stack({"strategy": {"type": "top_p", "top_p": 0}})
    with pytest.raises(ValueError, match="top_k"):
        fastsample.from_llama_stack({"strategy": {"type": "top_k", "top_k": -3}})


def test_every_adapter_returns_sampling_params():
    for make, body in ((fastsample.from_openai, {}), (fastsample.from_hf, {}),
                       (fastsample.from_bedrock, {}), (fastsample.from_llama_stack, {})):
        assert isinstance(make(body), SamplingParams)


def test_openai_n_and_best_of_are_fields():
    p = fastsample.from_openai({"model": "m", "n": 2, "best_of": 3})
    assert (p.n, p.best_of) == (2, 3) and "n" not in p.metadata
    assert fastsample.from_openai({"model": "m"}).n == 1
    for body, message in (({"n": 0}, "n=0 is out of range"),
                          ({"n": 3, "best_of": 2}, "best_of=2 is out of range; allowed: "
                                                   "best_of >= n (3)"),
                          ({"best_of": 1.5}, "best_of")):
        with pytest.raises((ValueError, TypeError), match=re.escape(message)):
            fastsample.from_openai({"model": "m", **body})


def test_hf_strategy_fields():
    """num_return_sequences -> n; num_beams (greedy) -> beam search with length_penalty and
    early_stopping, which without beams stay metadata (transformers reads them only there)."""
    p = fastsample.from_hf({"num_beams": 4, "num_return_sequences": 2, "length_penalty": 0.5,
                            "early_stopping": "never"})
    assert (p.num_beams, p.n, p.length_penalty, p.early_stopping) == (4, 2, 0.5, "never")
    assert p.temperature == 0.0
    p = fastsample.from_hf({"do_sample": True, "num_return_sequences": 3, "length_penalty": 2.0})
    assert (p.n, p.num_beams, p.length_penalty) == (3, 1, 1.0)
    assert p.metadata["length_penalty"] == 2.0
    with pytest.raises(ValueError, match=re.escape("num_return_sequences=3 is out of range with "
                                                   "num_beams=2")):
        fastsample.from_hf({"num_beams": 2, "num_return_sequences": 3})
    with pytest.raises(ValueError, match="early_stopping='always' is not allowed"):
        fastsample.from_hf({"num_beams": 2, "early_stopping": "always"})


# Inputs fuzzing found crashing with the wrong exception, naming no field or the internal one,
# or accepted although the source system rules them out.
@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: fastsample.from_openai({"response_format": "json_object"}), TypeError,
     r"OpenAI: response_format must be a dict"),
    (lambda: fastsample.from_openai({"response_format": {"type": "xml"}}), ValueError,
     r"response_format type 'xml' is not one of"),
    (lambda: fastsample.from_openai({"logit_bias": torch.tensor([1.0, 2.0])}), TypeError,
     r"OpenAI: logit_bias must be a dict"),
    (lambda: fastsample.from_openai({"stop": torch.tensor([1, 2])}), TypeError,
     r"OpenAI: stop must be a string or a list of strings"),
    (lambda: fastsample.from_openai({"temperature": {"distribution_type": "uniform",
                                                     "params": {"low": 1.5, "high": 1}}}),
     ValueError, r"OpenAI temperature: Uniform: low=1.5 must be <= high=1"),
    (lambda: fastsample.from_openai({"top_p": {"distribution_type": "manual",
                                               "params": {"values": "ab"}}}),
     TypeError, r"OpenAI top_p: params.values of a manual distribution must be a list"),
    (lambda: fastsample.from_openai({"logit_bias": "abc"}), TypeError,
     r"OpenAI: logit_bias must be a dict"),
    (lambda: fastsample.from_openai({"stop": 5}), TypeError, r"OpenAI: stop must be a string"),
    (lambda: fastsample.from_openai({"stop": 0}), TypeError, r"OpenAI: stop must be a string"),
    (lambda: fastsample.from_openai({"stop": {"a": 1}}), TypeError, r"OpenAI: stop must be"),
    (lambda: fastsample.from_openai({"max_completion_tokens": 0}), ValueError,
     r"OpenAI: max_completion_tokens=0 is out of range"),
    (lambda: fastsample.from_openai({"max_tokens": ""}), TypeError,
     r"OpenAI: max_tokens must be an integer"),
    (lambda: fastsample.from_openai({"logprobs": True, "top_logprobs": 21}), ValueError,
     r"OpenAI: top_logprobs=21 is out of range"),
    (lambda: fastsample.from_openai({"top_logprobs": 3}), ValueError,
     r"top_logprobs=3 needs logprobs=true"),
    (lambda: fastsample.from_openai({"logprobs": 2, "top_logprobs": 3}), ValueError,
     r"top_logprobs goes with logprobs=true"),
    (lambda: fastsample.from_openai({"allowed_token_ids": []}), ValueError,
     r"allowed_token_ids=\[\] would mask every token"),
    (lambda: fastsample.from_openai({"ignore_eos": "false"}), TypeError,
     r"OpenAI: ignore_eos must be true or false"),
    (lambda: fastsample.from_openai({"min_tokens": 5, "max_completion_tokens": 2}), ValueError,
     r"min_tokens <= max_completion_tokens \(2\)"),
    (lambda: fastsample.from_openai([("model", "m")]), TypeError,
     r"OpenAI: the request body must be a dict"),
    (lambda: fastsample.from_hf({"bad_words_ids": [1, 2]}), TypeError,
     r"bad_words_ids must be a list of token-id lists"),
    (lambda: fastsample.from_hf({"suppress_tokens": 5}), TypeError,
     r"suppress_tokens must be a list of token ids"),
    (lambda: fastsample.from_hf({"suppress_tokens": b"ab"}), TypeError,
     r"suppress_tokens must be a list of token ids, got bytes"),
    (lambda: fastsample.from_hf({"do_sample": "false", "temperature": 0.5}), TypeError,
     r"GenerationConfig: do_sample must be true or false"),
    (lambda: fastsample.from_hf({"do_sample": True, "top_k": []}), TypeError,
     r"GenerationConfig: top_k must be an integer"),
    (lambda: fastsample.from_hf({"max_new_tokens": 0}), ValueError,
     r"GenerationConfig: max_new_tokens=0 is out of range"),
    (lambda: fastsample.from_hf({"min_new_tokens": 3, "max_new_tokens": 2}), ValueError,
     r"min_new_tokens=3 is out of range.*max_new_tokens \(2\)"),
    (lambda: fastsample.from_hf({"max_length": 0}), ValueError, r"max_length=0 is out of range"),
    (lambda: fastsample.from_bedrock({"stopSequences": 5}), TypeError,
     r"Bedrock: stopSequences must be a string or a list of strings"),
    (lambda: fastsample.from_bedrock({"maxTokens": 0}), ValueError,
     r"Bedrock: maxTokens=0 is out of range"),
    (lambda: fastsample.from_bedrock({"inferenceConfig": {}, "additionalModelRequestFields": [1]}),
     TypeError, r"Bedrock: additionalModelRequestFields must be a dict"),
    (lambda: fastsample.from_llama_stack({"strategy": {"type": ["top_p"]}}), ValueError,
     r"Llama Stack: strategy \['top_p'\] is not one of"),
    (lambda: fastsample.from_llama_stack({"strategy": {"type": "top_k"}}), ValueError,
     r"the top_k strategy needs top_k"),
    (lambda: fastsample.from_llama_stack({"max_tokens": ""}), TypeError,
     r"Llama Stack: max_tokens must be an integer"),
    (lambda: fastsample.from_llama_stack({"stop": 0}), TypeError,
     r"Llama Stack: stop must be a string or a list of strings"),
    (lambda: SamplingParams(stop=5), TypeError, r"stop must be a string or a list of strings"),
    (lambda: SamplingParams(stop={"a": 1}), TypeError, r"stop must be a string or a list"),
    (lambda: SamplingParams(allowed_token_ids=[]), ValueError,
     r"allowed_token_ids=\[\] would mask every token"),
    (lambda: SamplingParams(banned_token_ids={1: 2}), TypeError,
     r"banned_token_ids must be a list of token ids"),
])
def test_adapter_errors_name_the_callers_field(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_numpy_integers_become_ints():
    p = SamplingParams(max_tokens=np.int64(5), min_tokens=np.int32(1), logprobs=np.int64(2),
                       prompt_logprobs=np.int8(1), top_k=np.int64(3), seed=np.uint32(4))
    for name in ("max_tokens", "min_tokens", "logprobs", "prompt_logprobs", "top_k", "seed"):
        assert type(getattr(p, name)) is int, name


@pytest.mark.parametrize("field,value,error", [
    ("length_penalty", torch.tensor([1, 2]), TypeError),
    ("early_stopping", torch.tensor([1, 2]), ValueError),
    ("early_stopping", "always", ValueError)])
def test_hf_strategy_fields_are_typed_without_beams_too(field, value, error):
    """Fuzzing found a tensor length_penalty crashing from_hf with a RuntimeError (an ambiguous
    tensor compared to the default) where no beams read it: both fields are checked either
    way."""
    with pytest.raises(error, match=field):
        fastsample.from_hf({field: value})
    with pytest.raises(error, match=field):
        fastsample.from_hf({field: value, "num_beams": 2})


@pytest.mark.parametrize("body,want", [
    ({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "temperature": 0.5,
      "top_p": 0.9, "top_k": 250, "stop_sequences": ["\n\nHuman:"],
      "messages": [{"role": "user", "content": "hi"}]},
     dict(temperature=0.5, top_p=0.9, top_k=250, max_tokens=512, stop=("\n\nHuman:",))),
    ({"prompt": "hi", "max_gen_len": 100, "temperature": 0.3, "top_p": 0.8},
     dict(temperature=0.3, top_p=0.8, max_tokens=100)),
    ({"prompt": "hi", "max_tokens": 50, "temperature": 0.7, "top_k": 40, "stop": ["a"]},
     dict(temperature=0.7, top_k=40, max_tokens=50, stop=("a",))),
    ({"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 64, "temperature": 0.2,
                                                   "topP": 0.7, "stopSequences": ["|"]}},
     dict(temperature=0.2, top_p=0.7, max_tokens=64, stop=("|",))),
    ({"schemaVersion": "messages-v1", "messages": [],
      "inferenceConfig": {"max_new_tokens": 30, "top_k": 20, "temperature": 0.4}},
     dict(temperature=0.4, top_k=20, max_tokens=30)),
], ids=["anthropic", "llama", "mistral", "titan", "nova"])
def test_bedrock_native_invoke_model_bodies(body, want):
    assert fastsample.from_bedrock(body) == fastsample.SamplingParams(**want)


@pytest.mark.parametrize("body,error,message", [
    ({"prompt": "x", "max_gen_len": 5000}, ValueError,
     "(Llama): max_gen_len=5000 is out of range; allowed: 1 <= max_gen_len <= 2048"),
    ({"prompt": "x", "max_tokens": 5, "top_k": 500}, ValueError,
     "(Mistral): top_k=500 is out of range; allowed: 1 <= top_k <= 200"),
    ({"anthropic_version": "v", "temprature": 0.5}, ValueError,
     "(Anthropic): unknown field(s) 'temprature' (did you mean 'temperature'?)"),
    ({"anthropic_version": "v", "temperature": 1.5}, ValueError, "(Anthropic): temperature=1.5"),
    ({"inputText": "x", "textGenerationConfig": {"topP": 0}}, ValueError, "(Titan): topP=0"),
    ({"inputText": "x", "textGenerationConfig": 3}, TypeError,
     "textGenerationConfig must be a dict"),
    ({"schemaVersion": "messages-v1", "inferenceConfig": {"max_new_tokens": "9"}}, TypeError,
     "(Nova): max_new_tokens must be an integer"),
])
def test_bedrock_native_bodies_are_checked_in_their_own_terms(body, error, message):
    with pytest.raises(error, match=re.escape(message)):
        fastsample.from_bedrock(body)
