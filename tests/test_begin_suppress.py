"""begin_suppress_tokens (transformers' SuppressTokensAtBeginLogitsProcessor): masked at a
row's first generated token only, in every path a request takes."""
import math

import pytest
import torch

import fastsample
from fastsample import SamplingParams, reference

transformers = pytest.importorskip("transformers")
from transformers.generation.logits_process import (  # noqa: E402
    SuppressTokensAtBeginLogitsProcessor)
from fastsample.transformers import FastLogitsProcessor  # noqa: E402


@pytest.mark.parametrize("generated, expected", [(0, [2, 5]), (1, []), (7, [])])
def test_masked_at_the_first_token_only(generated, expected):
    x = torch.zeros(1, 8)
    kw = dict(begin_suppress_tokens=[5, 2], num_generated=generated)
    out = fastsample.process_logits(x, **kw)
    assert (out[0] == -math.inf).nonzero().flatten().tolist() == expected
    assert torch.equal(out, reference.process_logits(x, **kw))


def test_generated_count_defaults_to_the_output_ids():
    x = torch.zeros(3, 8)
    out = fastsample.process_logits(x, begin_suppress_tokens=[[1], [2], [3]],
                                    output_token_ids=[[], [4], None])
    assert [(r == -math.inf).nonzero().flatten().tolist() for r in out] == [[1], [], [3]]
    assert torch.equal(out, reference.process_logits(x, begin_suppress_tokens=[[1], [2], [3]],
                                                     output_token_ids=[[], [4], None]))


def test_equals_transformers_processor_over_a_generate():
    """The processor's calls of one generate: transformers' mask at the prompt's length, and
    nothing after."""
    scores = torch.randn(2, 30)
    ids = torch.randint(0, 30, (2, 6))
    want = SuppressTokensAtBeginLogitsProcessor([3, 9], begin_index=6)
    proc = FastLogitsProcessor(begin_suppress_tokens=[3, 9])
    for step in range(3):
        assert torch.equal(proc(ids, scores), want(ids, scores.clone()))
        ids = torch.cat([ids, torch.randint(0, 30, (2, 1))], dim=1)


def test_sampler_and_generate():
    """A greedy Sampler whose favourite token is suppressed takes it from the second step on;
    generate with the config field equals transformers' greedy generate."""
    sampler = fastsample.Sampler(8)
    sampler.add("r", SamplingParams(temperature=0.0, begin_suppress_tokens=(4,), max_tokens=3))
    x = torch.zeros(1, 8)
    x[0, 4], x[0, 6] = 2.0, 1.0
    assert [sampler.step(x)[0].token for _ in range(3)] == [6, 4, 4]
    from fastsample.transformers import sample_loop
    from tiny_models import llama
    model = llama()
    input_ids = torch.tensor([[5, 9, 5, 17, 3]])
    plain = model.generate(input_ids, do_sample=False, max_new_tokens=4, pad_token_id=0)
    kw = dict(do_sample=False, max_new_tokens=4, pad_token_id=0,
              begin_suppress_tokens=[plain[0, 5].item()])
    want = model.generate(input_ids, **kw)
    assert not torch.equal(want, plain)
    assert torch.equal(model.generate(input_ids, custom_generate=sample_loop, **kw), want)
    assert fastsample.from_hf({"begin_suppress_tokens": [7]}).begin_suppress_tokens == (7,)


def test_bad_ids_are_rejected():
    with pytest.raises(ValueError, match="begin_suppress_tokens"):
        fastsample.sample(torch.zeros(1, 8), begin_suppress_tokens=[8])
    with pytest.raises(TypeError, match="begin_suppress_tokens"):
        SamplingParams(begin_suppress_tokens=[1.5])
    with pytest.raises(ValueError, match="begin_suppress_tokens"):
        fastsample.Sampler(8).add("r", SamplingParams(begin_suppress_tokens=[9]))
