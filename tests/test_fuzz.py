"""Property tests (hypothesis) of the whole contract on adversarial inputs: sample,
process_logits, prompt_logprobs, the Sampler and every adapter. docs/reliability.md says what
they cover and how many cases each runs.

Each property draws a small recipe (shapes, value mix, parameters, edits) and builds tensors
from it with a seeded generator, so shrinking works on the recipe. Runs are derandomized: the
same cases every run. FASTSAMPLE_FUZZ_SCALE (default 1) multiplies the case counts.
"""
import dataclasses
import math
import os

import numpy as np
import pytest
import torch

import fastsample
from fastsample import reference
from helpers import keep_set_mismatch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,  # noqa: E402
                                 precondition, rule)

SCALE = float(os.environ.get("FASTSAMPLE_FUZZ_SCALE", "1"))
FLT_MAX = torch.finfo(torch.float32).max


def fuzz_settings(examples):
    return settings(max_examples=max(1, int(examples * SCALE)), derandomize=True, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))


# -- Inputs ------------------------------------------------------------------------------------

VOCABS = [1, 2, 3, 7, 31, 64, 65, 129, 300, 1000, 4099, 40000]
SPECIAL = [math.nan, math.inf, -math.inf, FLT_MAX, -FLT_MAX, 0.0, -0.0, 1e-45, -1e-45, 1e38,
           -1e38, 65504.0]


@st.composite
def logits_recipes(draw, max_batch=4):
    return dict(batch=draw(st.integers(1, max_batch)), vocab=draw(st.sampled_from(VOCABS)),
                dtype=draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16])),
                seed=draw(st.integers(0, 2**16)), scale=draw(st.sampled_from([0.0, 1.0, 3.0,
                                                                              30.0, 1e30])),
                special=draw(st.sampled_from([0.0, 0.01, 0.3, 1.0])),
                ties=draw(st.booleans()), masked_row=draw(st.booleans()),
                strided=draw(st.booleans()))


def make_logits(r):
    g = torch.Generator().manual_seed(r["seed"])
    b, v = r["batch"], r["vocab"]
    x = torch.randn(b, v, generator=g, dtype=torch.float64) * r["scale"]
    if r["ties"]:
        x = torch.round(x * 2) / 2
    if r["special"]:
        pick = torch.rand(b, v, generator=g) < r["special"]
        values = torch.tensor(SPECIAL, dtype=torch.float64)
        x[pick] = values[torch.randint(0, len(SPECIAL), (int(pick.sum()),), generator=g)]
    if r["masked_row"]:
        x[-1] = -math.inf
    x = x.to(r["dtype"])  # float16 overflows to +-inf here, as a model's logits may
    if r["strided"]:
        x = torch.cat([x, x], dim=1)[:, :v]  # row stride 2V: read in place
    return x


def per_row(draw, values, batch):
    if draw(st.booleans()):
        return draw(st.sampled_from(values))
    return [draw(st.sampled_from(values)) for _ in range(batch)]


@st.composite
def filter_params(draw, batch, vocab):
    temps = [0.0, 1e-40, 1e-30, 0.1, 0.7, 1.0, 1.5, 1e30, 3.4e38]
    ks = [-1, 0, 1, 2, 50, max(1, vocab - 1), vocab, vocab + 1, 2**40]
    ps = [1e-9, 0.1, 0.5, 0.8, 0.9, 0.95, 0.999999, 1.0]
    ms = [0.0, 1e-40, 0.01, 0.1, 0.5, 1.0]
    return dict(temperature=per_row(draw, temps, batch), top_k=per_row(draw, ks, batch),
                top_p=per_row(draw, ps, batch), min_p=per_row(draw, ms, batch))


@st.composite
def edit_params(draw, batch, vocab):
    ids = st.lists(st.integers(0, vocab - 1), max_size=12)
    out = {}
    if draw(st.booleans()):
        out["repetition_penalty"] = per_row(draw, [1.0, 1e-30, 0.5, 1.3, 2.0, 1e30], batch)
        out["prompt_token_ids"] = [draw(ids) for _ in range(batch)]
    if draw(st.booleans()):
        pen = [0.0, -3.4e38, -2.0, 0.5, 2.0, 3.4e38]
        out["frequency_penalty"] = per_row(draw, pen, batch)
        out["presence_penalty"] = per_row(draw, pen, batch)
    if draw(st.booleans()):
        out["output_token_ids"] = [draw(ids) for _ in range(batch)]
    if draw(st.booleans()):
        bias = st.dictionaries(st.integers(0, vocab - 1),
                               st.sampled_from([-1e9, -100.0, -5.0, 0.0, 2.5, 100.0, 1e9]),
                               max_size=6)
        out["logit_bias"] = draw(bias) if draw(st.booleans()) else [draw(bias) for _ in range(batch)]
    if draw(st.booleans()):
        allowed = st.one_of(st.none(), st.lists(st.integers(0, vocab - 1), min_size=1, max_size=8))
        out["allowed_token_ids"] = [draw(allowed) for _ in range(batch)]
    if draw(st.booleans()):
        out["banned_token_ids"] = draw(ids)
    if draw(st.booleans()):
        words = (vocab + 31) // 32
        mask = torch.randint(-2**31, 2**31, (batch, words), dtype=torch.int64,
                             generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
        out["token_bitmask"] = mask.to(torch.int32)
    if draw(st.booleans()):
        out["min_tokens"] = draw(st.integers(0, 3))
        out["eos_token_id"] = draw(st.integers(0, vocab - 1))
        out["stop_token_ids"] = draw(ids)
        out["num_generated"] = [draw(st.integers(0, 4)) for _ in range(batch)]
    few = st.lists(st.integers(0, min(vocab, 4) - 1), max_size=12)  # histories that repeat
    if draw(st.booleans()):
        out["no_repeat_ngram_size"] = per_row(draw, [0, 1, 2, 3, 50], batch)
        out.setdefault("prompt_token_ids", [draw(few) for _ in range(batch)])
    if draw(st.booleans()):
        sequence = st.lists(st.integers(0, min(vocab, 4) - 1), min_size=1, max_size=3).map(tuple)
        out["sequence_bias"] = draw(st.dictionaries(
            sequence, st.sampled_from([-math.inf, -1e30, -3.0, 0.0, 2.0, 1e30]), max_size=6))
    if draw(st.booleans()):
        out["begin_suppress_tokens"] = draw(ids)
    if draw(st.booleans()) and "output_token_counts" not in out:
        out["dry_multiplier"] = per_row(draw, [0.0, 0.5, 2.0, 1e30], batch)
        out["dry_base"] = per_row(draw, [1.0, 1.75, 1e10], batch)
        out["dry_allowed_length"] = per_row(draw, [0, 1, 2, 50], batch)
        out["dry_penalty_last_n"] = per_row(draw, [-1, 0, 1, 5], batch)
        breaker = st.lists(st.integers(0, min(vocab, 4) - 1), min_size=1, max_size=3)
        out["dry_sequence_breakers"] = draw(st.lists(breaker, max_size=3)) or None
        out.setdefault("output_token_ids", [draw(few) for _ in range(batch)])
    return out


# -- sample / process_logits --------------------------------------------------------------------

@fuzz_settings(1500)
@given(st.data())
def test_kernels_keep_the_contract(data):
    r = data.draw(logits_recipes())
    x = make_logits(r)
    b, v = x.shape
    filters = data.draw(filter_params(b, v))
    edits = data.draw(edit_params(b, v))
    params = {**filters, **edits}
    got = fastsample.process_logits(x, **params)
    problem = keep_set_mismatch(x, got, **params)
    assert problem is None, problem
    keep = got > -math.inf
    seeds = [data.draw(st.integers(0, 2**63 - 1)) for _ in range(b)]
    out = fastsample.sample(x, seed=seeds, return_valid=True, **params)
    # -1 exactly for the rows with no valid token; every other token inside the keep-set.
    assert torch.equal(out.valid, keep.any(dim=1))
    assert torch.equal(out.tokens < 0, ~out.valid)
    assert (out.tokens[~out.valid] == -1).all()
    rows = out.valid.nonzero().flatten()
    assert keep[rows, out.tokens[rows]].all()
    want = reference.sample(x, seed=seeds, return_valid=True, **params)
    assert torch.equal(want.valid, out.valid)
    if torch.equal(keep, reference.process_logits(x, **params) > -math.inf):
        assert torch.equal(want.tokens, out.tokens)
    # Logprobs: finite exactly for valid rows, the top list in order, ids in range.
    n = data.draw(st.integers(0, 20))
    mode = data.draw(st.sampled_from(["raw", "processed"]))
    lp = fastsample.sample(x, seed=seeds, logprobs=n, logprobs_mode=mode, **params)
    assert torch.equal(lp.tokens, out.tokens)
    assert torch.equal(torch.isfinite(lp.logprobs), out.valid)
    assert (lp.logprobs[out.valid] <= 1e-5).all()
    assert ((lp.top_ids >= -1) & (lp.top_ids < v)).all()
    assert torch.equal(lp.top_ids < 0, lp.top_logprobs == -math.inf)
    assert (lp.top_logprobs[:, 1:] <= lp.top_logprobs[:, :-1]).all()
    if mode == "raw":
        ref_lp, ref_ids, ref_top = reference.logprobs_of(x, out.tokens, n, False)
        assert torch.allclose(lp.logprobs, ref_lp, atol=1e-4, equal_nan=False) or \
            not out.valid.any()
        assert torch.allclose(lp.top_logprobs, ref_top, atol=1e-4)


BAD_VALUES = [None, "0.5", b"1", [], [[1]], {"a": 1}, math.nan, math.inf, -math.inf, -1, -1.5,
              2**64, -2**64, 1e-50, 1e39, True, 1.5, np.array(["a", "b"]), torch.ones(3),
              torch.ones(2, dtype=torch.bool), torch.tensor([0.5, 0.5], device="meta"), object()]
FIELDS = ["temperature", "top_k", "top_p", "min_p", "seed", "offset", "repetition_penalty",
          "presence_penalty", "frequency_penalty", "prompt_token_ids", "output_token_ids",
          "output_token_counts", "logit_bias", "allowed_token_ids", "banned_token_ids",
          "token_bitmask", "min_tokens", "eos_token_id", "stop_token_ids", "num_generated",
          "ignore_eos", "logprobs", "logprobs_mode", "generator", "return_valid",
          "no_repeat_ngram_size", "sequence_bias", "begin_suppress_tokens", "dry_multiplier",
          "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers"]


@fuzz_settings(1000)
@given(st.sampled_from(FIELDS), st.sampled_from(BAD_VALUES), st.booleans())
def test_bad_arguments_raise_errors_naming_the_field(field, value, process):
    x = torch.randn(2, 40, generator=torch.Generator().manual_seed(0))
    kwargs = {field: value}
    if field in ("output_token_counts",):
        kwargs.update(frequency_penalty=1.0, output_token_ids=[[1], [2]])
    if process and field in ("seed", "offset", "logprobs", "logprobs_mode", "generator",
                             "return_valid"):
        return  # sample-only keywords
    fn = fastsample.process_logits if process else fastsample.sample
    try:
        result = fn(x, **kwargs)
    except (ValueError, TypeError) as e:
        assert field in str(e) or field.split("_")[0] in str(e), (field, value, str(e))
        return
    # Accepted: then it was a valid value, and the result has the contract's shape.
    shape = (2, 40) if process else (2,)
    tensor = result if isinstance(result, torch.Tensor) else result.tokens
    assert tensor.shape == shape


# -- prompt_logprobs --------------------------------------------------------------------------

@fuzz_settings(400)
@given(logits_recipes(max_batch=6), st.integers(0, 20), st.integers(0, 2**16))
def test_prompt_logprobs_equal_the_reference(r, n, seed):
    x = make_logits(r)
    length, v = x.shape
    targets = torch.randint(0, v, (length,), generator=torch.Generator().manual_seed(seed))
    got = fastsample.prompt_logprobs(x, targets, n)
    want = reference.logprobs_of(x, targets, n, False)
    finite = torch.isfinite(want[0])
    assert torch.equal(torch.isfinite(got.logprobs), finite)
    assert torch.allclose(got.logprobs[finite], want[0][finite], atol=1e-4)
    assert torch.allclose(got.top_logprobs, want[2], atol=1e-4)
    assert ((got.top_ids >= -1) & (got.top_ids < v)).all()


# -- The Sampler ----------------------------------------------------------------------------------

VOCAB = 97


class SamplerMachine(RuleBasedStateMachine):
    """Random add / remove / step sequences (some steps with a row that has no valid token)
    against a shadow transcript: tokens, finish reasons, limits and failed steps."""

    @initialize()
    def start(self):
        self.sampler = fastsample.Sampler(VOCAB, eos_token_id=0)
        self.shadow = {}   # request id -> (params, tokens so far)
        self.order = []
        self.next_id = 0

    @rule(temperature=st.sampled_from([0.0, 0.5, 1.0, 2.0]), top_k=st.sampled_from([0, 1, 5]),
          top_p=st.sampled_from([0.3, 0.9, 1.0]), rep=st.sampled_from([1.0, 1.5]),
          freq=st.sampled_from([0.0, 0.8]), bias=st.booleans(), min_tokens=st.integers(0, 3),
          max_tokens=st.integers(3, 8), logprobs=st.sampled_from([None, 0, 3]),
          seed=st.integers(0, 1000), prompt=st.lists(st.integers(0, VOCAB - 1), max_size=5))
    def add(self, temperature, top_k, top_p, rep, freq, bias, min_tokens, max_tokens, logprobs,
            seed, prompt):
        rid = f"r{self.next_id}"
        self.next_id += 1
        p = fastsample.SamplingParams(
            temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=rep,
            frequency_penalty=freq, logit_bias={0: 5.0} if bias else None,
            min_tokens=min(min_tokens, max_tokens), max_tokens=max_tokens, logprobs=logprobs,
            seed=seed, stop_token_ids=[1])
        self.sampler.add(rid, p, prompt)
        self.shadow[rid] = (p, [])
        self.order.append(rid)

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def remove(self, data):
        rid = data.draw(st.sampled_from(self.order))
        self.sampler.remove(rid)
        self.order.remove(rid)

    @precondition(lambda self: self.order)
    @rule(seed=st.integers(0, 2**16), broken_row=st.integers(-1, 7))
    def step(self, seed, broken_row):
        assert self.sampler.request_ids == self.order
        x = torch.randn(len(self.order), VOCAB, generator=torch.Generator().manual_seed(seed)) * 3
        if 0 <= broken_row < len(self.order):
            bad = x.clone()
            bad[broken_row] = math.nan
            with pytest.raises(ValueError, match="no valid token"):
                self.sampler.step(bad)
            assert self.sampler.request_ids == self.order  # nothing changed
        outs = self.sampler.step(x)
        assert [o.request_id for o in outs] == self.order
        for o in outs:
            p, tokens = self.shadow[o.request_id]
            tokens.append(o.token)
            assert 0 <= o.token < VOCAB
            n = len(tokens)
            assert n <= p.max_tokens
            if n < p.min_tokens:
                assert o.token not in (0, 1)  # EOS and stop ids are suppressed
            if o.finished:
                assert o.finish_reason in ("length", "eos", "stop")
                assert (o.finish_reason == "length") == (n == p.max_tokens and o.token not in
                                                         (0, 1))
                self.order.remove(o.request_id)
            else:
                assert n < p.max_tokens and (n < p.min_tokens or o.token not in (0, 1))
            if p.logprobs is not None:
                assert o.logprob is not None and math.isfinite(o.logprob)
                assert len(o.top_ids) == p.logprobs
            if p.temperature == 0.0 and p.repetition_penalty == 1.0 and \
                    p.frequency_penalty == 0.0 and p.logit_bias is None and n >= p.min_tokens:
                assert o.token == int(x[outs.index(o)].argmax())

    @invariant()
    def ids_match(self):
        if hasattr(self, "sampler"):
            assert len(self.sampler) == len(self.order)


test_sampler_operation_sequences = SamplerMachine.TestCase
test_sampler_operation_sequences.settings = fuzz_settings(250)


# -- Adapters ---------------------------------------------------------------------------------

ADVERSARIAL = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.binary(max_size=3), st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=2)),
                                    max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-3, 3), max_size=2),
    st.sampled_from([torch.tensor([1, 2]), torch.tensor(0.5), np.int64(3), np.float32(0.5),
                     {"distribution_type": "uniform", "params": {"low": 0.2, "high": 0.1}},
                     {"distribution_type": "manual", "params": {"values": "ab"}},
                     {"type": "json_schema"}, {"type": ["top_p"]}, [[1, 2], [3]]]))

ADAPTERS = {
    "openai": (fastsample.from_openai, ["temperature", "top_p", "top_k", "min_p", "seed", "stop",
                                        "max_tokens", "max_completion_tokens", "logprobs",
                                        "top_logprobs", "logit_bias", "presence_penalty",
                                        "frequency_penalty", "repetition_penalty", "n",
                                        "best_of", "response_format", "guided_json",
                                        "guided_choice", "stop_token_ids", "ignore_eos",
                                        "min_tokens", "allowed_token_ids", "nvext",
                                        "extra_body", "prompt_logprobs"]),
    "hf": (fastsample.from_hf, ["do_sample", "temperature", "top_k", "top_p", "min_p",
                                "repetition_penalty", "max_new_tokens", "min_new_tokens",
                                "max_length", "eos_token_id", "suppress_tokens",
                                "bad_words_ids", "num_beams", "seed", "typical_p",
                                "num_return_sequences", "length_penalty", "early_stopping"]),
    "bedrock": (fastsample.from_bedrock, ["temperature", "topP", "maxTokens", "stopSequences",
                                          "inferenceConfig", "additionalModelRequestFields"]),
    "llama_stack": (fastsample.from_llama_stack, ["strategy", "max_tokens", "stop",
                                                  "repetition_penalty"]),
}


@fuzz_settings(2000)
@given(st.sampled_from(sorted(ADAPTERS)), st.data())
def test_adapters_raise_only_value_and_type_errors(name, data):
    adapter, fields = ADAPTERS[name]
    body = data.draw(st.dictionaries(st.sampled_from(fields), ADVERSARIAL, max_size=4))
    try:
        params = adapter(body)
    except (ValueError, TypeError) as e:
        assert str(e), "an error must say what is wrong"
        return
    assert isinstance(params, fastsample.SamplingParams)
    # What was accepted is a valid request: its sampling fields batch and sample (a batch
    # rejects the fields no batch call runs: prompt_logprobs and the decoding strategy, which
    # generate runs).
    batch = fastsample.SamplingBatch([dataclasses.replace(
        params.resolve(seed=0), structured_output=None, prompt_logprobs=None, n=1,
        best_of=None, num_beams=1, length_penalty=1.0, early_stopping=False)])
    assert len(batch) == 1
