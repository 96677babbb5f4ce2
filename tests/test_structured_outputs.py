"""Structured outputs: a request's structured_output (guided JSON, regex, choice, grammar) read
into one grammar, compiled by xgrammar for the tokenizer, and enforced in the Sampler,
fastsample.generate and a SamplingBatch through the fused kernels' token_bitmask. A byte-level
BPE trained here and a tiny random Llama stand in for a model: over many seeds every finished
output must validate."""
import json
import re

import jsonschema
import pytest
import torch

import fastsample
from fastsample import SamplingBatch, SamplingParams, Sampler, reference
from fastsample.grammar import GrammarRows, GrammarSpec, grammar_spec

from tiny_models import bpe_tokenizer, llama

V = 320  # the model's logits; the tokenizer has 300 tokens (the rest are never allowed)
SCHEMA = {"type": "object",
          "properties": {"ok": {"type": "boolean"},
                         "color": {"enum": ["red", "green", "blue"]},
                         "n": {"type": "integer", "minimum": 0, "maximum": 99}},
          "required": ["ok", "color", "n"], "additionalProperties": False}


@pytest.fixture(scope="module")
def tok():
    return bpe_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    m = llama(vocab=V, seed=1)
    m.generation_config.eos_token_id = tok.eos_token_id
    return m


# -- reading the request ---------------------------------------------------------------------
@pytest.mark.parametrize("structured, kind", [
    ({"guided_json": SCHEMA}, "json_schema"),
    ({"guided_json": json.dumps(SCHEMA)}, "json_schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}},
     "json_schema"),
    ({"response_format": {"type": "json_object"}}, "json_object"),
    ({"guided_regex": "[a-z]+"}, "regex"),
    ({"guided_choice": ["yes", "no"]}, "choice"),
    ({"guided_grammar": 'root ::= "a"+'}, "grammar"),
    ({"structured_outputs": {"json": SCHEMA}}, "json_schema"),
    ({"structured_outputs": {"choice": ["a", "b"]}}, "choice"),
])
def test_every_field_form_reads_as_one_grammar(structured, kind):
    spec = grammar_spec(structured)
    assert isinstance(spec, GrammarSpec) and spec.kind == kind
    if kind == "json_schema":
        assert json.loads(spec.source) == SCHEMA
    # From an OpenAI-style body too (vLLM and NIM spellings).
    body = {"nvext": structured} if "guided_json" in structured else structured
    assert grammar_spec(fastsample.from_openai(body).structured_output).kind == kind


def test_a_pydantic_model_class_is_a_schema():
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):
        ok: bool

    spec = grammar_spec({"guided_json": Item})
    assert json.loads(spec.source)["properties"]["ok"]["type"] == "boolean"


@pytest.mark.parametrize("structured, error, pattern", [
    ({"guided_regex": "a", "guided_choice": ["b"]}, ValueError, "asks for 2 grammars"),
    ({"guided_choice": []}, ValueError, "guided_choice must be a non-empty list"),
    ({"guided_choice": ["a", ""]}, ValueError, r"guided_choice\[1\]='' must be a non-empty"),
    ({"guided_json": "{not json"}, ValueError, "guided_json: not a JSON schema"),
    ({"guided_json": 5}, TypeError, "guided_json must be a JSON schema"),
    ({"response_format": {"type": "yaml"}}, ValueError, "response_format type 'yaml'"),
    ({"structured_outputs": {"xml": "a"}}, ValueError, r"structured_outputs\.xml is not a known"),
    ({"guided_whatever": "a"}, ValueError, "'guided_whatever' is not a structured-output kind"),
])
def test_malformed_requests_are_errors_naming_the_field(structured, error, pattern):
    with pytest.raises(error, match=pattern):
        grammar_spec(structured)


def test_sampler_rejects_at_add_what_it_cannot_run(tok):
    s = Sampler(V, tokenizer=tok)
    with pytest.raises(ValueError, match=r"request 'a': .*the regex does not compile"):
        s.add("a", SamplingParams(structured_output={"guided_regex": "("}))
    with pytest.raises(ValueError, match=r"request 'b': .*asks for 2 grammars"):
        s.add("b", SamplingParams(structured_output={"guided_regex": "a",
                                                     "guided_choice": ["b"]}))
    with pytest.raises(ValueError, match="structured_output needs the model's tokenizer"):
        Sampler(V).add("c", SamplingParams(structured_output={"guided_regex": "a"}))
    assert s.request_ids == []


# -- decoding under a grammar ----------------------------------------------------------------
def run(model, tok, params):
    return fastsample.generate(model, ["hello"] * len(params), params, tokenizer=tok)


def test_json_schema_outputs_validate_over_many_seeds(model, tok):
    params = [SamplingParams(structured_output={"guided_json": SCHEMA}, seed=s, max_tokens=80,
                             temperature=1.2) for s in range(12)]
    for r in run(model, tok, params):
        assert r.finish_reason == "stop", r.text
        jsonschema.validate(json.loads(r.text), SCHEMA)


def test_regex_choice_and_grammar_outputs_match(model, tok):
    regex = r"[0-9]{3}-[a-z]{2,4}"
    choices = ["yes", "no", "maybe", "n/a \"quoted\""]
    grammar = 'root ::= ("ab" | "cd")+ "!"'
    params = [SamplingParams(structured_output={"guided_regex": regex}, seed=s, max_tokens=30)
              for s in range(6)]
    params += [SamplingParams(structured_output={"guided_choice": choices}, seed=s,
                              max_tokens=30) for s in range(6)]
    params += [SamplingParams(structured_output={"guided_grammar": grammar}, seed=s,
                              max_tokens=60, logit_bias={tok.convert_tokens_to_ids("!"): 3.0})
               for s in range(4)]
    out = run(model, tok, params)
    for r in out[:6]:
        assert r.finish_reason == "stop" and re.fullmatch(regex, r.text), r.text
    for r in out[6:12]:
        assert r.finish_reason == "stop" and r.text in choices, r.text
    assert len({r.text for r in out[6:12]}) > 1  # the draw still chooses
    for r in out[12:]:
        assert r.finish_reason == "stop" and re.fullmatch(r"(ab|cd)+!", r.text), r.text


def test_json_object_outputs_are_objects(model, tok):
    # A random model writes long strings: biasing the quote and the closing brace ends them.
    bias = {tok.convert_tokens_to_ids('"'): 4.0, tok.convert_tokens_to_ids("}"): 4.0}
    params = [SamplingParams(structured_output={"response_format": {"type": "json_object"}},
                             seed=s, max_tokens=200, logit_bias=bias) for s in range(8)]
    for r in run(model, tok, params):
        assert r.finish_reason == "stop", r.text
        assert isinstance(json.loads(r.text, strict=False), dict), r.text


def test_constrained_rows_leave_the_others_unchanged(model, tok):
    free = SamplingParams(seed=5, max_tokens=12, ignore_eos=True)
    alone = run(model, tok, [free])[0]
    mixed = run(model, tok, [SamplingParams(structured_output={"guided_json": SCHEMA}, seed=1,
                                            max_tokens=80), free,
                             SamplingParams(structured_output={"guided_choice": ["a", "b"]},
                                            seed=2)])
    assert mixed[1].token_ids == alone.token_ids


def test_greedy_decoding_equals_the_reference_under_the_same_mask(tok):
    """Sampler steps on random logits against a loop of its own: xgrammar's mask for the
    matcher's state, then reference.sample at temperature 0 with that mask."""
    import xgrammar as xgr
    structured = {"guided_json": SCHEMA}
    g = torch.Generator().manual_seed(3)
    s = Sampler(V, tokenizer=tok)
    s.add("r", SamplingParams(structured_output=structured, temperature=0.0, max_tokens=60))
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=V)
    compiled = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(SCHEMA),
                                                             any_whitespace=False)
    matcher = xgr.GrammarMatcher(compiled, override_stop_tokens=[tok.eos_token_id])
    mask = xgr.allocate_token_bitmask(1, V)
    for step in range(60):
        logits = torch.randn(1, V, generator=g) * 3
        matcher.fill_next_token_bitmask(mask, 0)
        want = int(reference.sample(logits, temperature=0.0, token_bitmask=mask)[0])
        got = s.step(logits)[0]
        assert got.token == want, step
        assert matcher.accept_token(want)
        if got.finished:
            assert matcher.is_terminated() and got.finish_reason == "stop"
            break
    else:
        pytest.fail("the grammar never ended")
    assert len(s) == 0


def test_a_sampling_batch_runs_grammar_rows(tok):
    params = [SamplingParams(seed=1), SamplingParams(structured_output={"guided_choice":
                                                                        ["yes", "no"]}, seed=2)]
    batch = SamplingBatch(params, tokenizer=tok, vocab_size=V)
    assert batch.flags.any_edits
    with pytest.raises(ValueError, match=r"rows \{1: \['structured_output'\]\}"):
        batch.filter_kwargs()
    g = torch.Generator().manual_seed(0)
    text = []
    for _ in range(5):
        logits = torch.randn(2, V, generator=g)
        tokens = fastsample.sample(logits, batch=batch)
        # The reference reads the same mask through the batch's keywords.
        assert torch.equal(tokens, reference.sample(logits, **batch.kwargs()))
        batch.advance(tokens)
        text.append(int(tokens[1]))
        if batch.grammar_terminated()[1]:
            break
    assert batch.grammar_terminated() == [False, True]
    assert tok.decode(text, skip_special_tokens=True) in ("yes", "no")
    # Rows follow keep/remove: the constrained row alone, then a fresh one after it.
    batch.keep([1])
    assert batch.grammar_terminated() == [True]


def test_grammar_rows_mask_the_ids_past_the_tokenizer(tok):
    rows = GrammarRows(tok, V)
    rows.append(rows.matchers([grammar_spec({"guided_regex": "[a-z]+"})], [[0]]) + [None])
    mask = rows.bitmask(torch.device("cpu"))
    assert mask.shape == (2, V // 32) and mask.dtype == torch.int32
    allowed = [t for t in range(V) if (int(mask[0, t // 32]) >> (t % 32)) & 1]
    assert allowed and max(allowed) < len(tok) and tok.eos_token_id not in allowed
    assert bool((mask[1] == -1).all())  # an unconstrained row allows everything


def test_transformers_logits_processor_follows_the_grammar(model, tok):
    from transformers import LogitsProcessorList
    from fastsample.transformers import FastLogitsProcessor
    regex = r"[0-9]{2,4}(-[a-z]{2})?"
    params = SamplingParams(structured_output={"guided_regex": regex}, temperature=0.9)
    proc = FastLogitsProcessor.from_params(params, tokenizer=tok)
    prompt = tok(["hello", "hello"], return_tensors="pt")
    for seed in range(3):  # one processor, three generate calls: the rows start afresh
        torch.manual_seed(seed)
        out = model.generate(**prompt, logits_processor=LogitsProcessorList([proc]),
                             max_new_tokens=20, pad_token_id=tok.eos_token_id,
                             **proc.generate_kwargs())
        for row in out[:, prompt["input_ids"].shape[1]:].tolist():
            assert tok.eos_token_id in row, row  # the grammar ended each row with EOS
            text = tok.decode(row[:row.index(tok.eos_token_id)])
            assert re.fullmatch(regex, text), text
    with pytest.raises(ValueError, match=r"the regex does not compile"):
        FastLogitsProcessor(structured_output={"guided_regex": "("}, tokenizer=tok)


def test_transformers_custom_generate_loop_follows_the_grammar(model, tok):
    from fastsample.transformers import sample_loop
    choices = ["yes", "no", "maybe"]
    prompt = tok(["hello", "hello", "hello"], return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**prompt, custom_generate=sample_loop, do_sample=True,
                         max_new_tokens=10, pad_token_id=tok.eos_token_id,
                         eos_token_id=tok.eos_token_id,
                         structured_output={"guided_choice": choices}, grammar_tokenizer=tok)
    for row in out[:, prompt["input_ids"].shape[1]:].tolist():
        ids = row[:row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
        assert tok.decode(ids) in choices, row


@pytest.mark.parametrize("lenient", [False, True])
def test_adapters_without_guided_decoding_say_so(lenient):
    """Llama Stack and Bedrock have no guided decoding: a guided field is refused, even when
    lenient (which otherwise ignores unknown fields), never dropped."""
    with pytest.raises(ValueError, match="Llama Stack has no guided decoding, got guided_json"):
        fastsample.from_llama_stack({"strategy": {"type": "greedy"}, "guided_json": SCHEMA},
                                    lenient=lenient)
    for body, field in (({"inferenceConfig": {"temperature": 0.5},
                          "response_format": {"type": "json_object"}}, "response_format"),
                        ({"temperature": 0.5, "guided_regex": "a+"}, "guided_regex"),
                        ({"inferenceConfig": {}, "additionalModelRequestFields":
                          {"guided_choice": ["a"]}}, "guided_choice")):
        with pytest.raises(ValueError, match=f"Bedrock has no guided decoding, got {field}"):
            fastsample.from_bedrock(body, lenient=lenient)
