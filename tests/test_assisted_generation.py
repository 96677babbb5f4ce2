"""fastsample.generate(draft_model=...): assisted generation on the tiny models. Greedy output
equals plain greedy output, sampled output follows plain sampling's distribution (Pearson
chi-square, fixed seeds, below the 0.001 quantile), and the model runs fewer forward passes."""
import pytest
import torch

import fastsample
import tiny_models
from helpers import chi_square, chi_square_bound

pytest.importorskip("transformers")


class Forwards:
    """Counts a model's forward passes."""

    def __init__(self, model):
        self.calls = 0
        self._hook = model.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1

    def remove(self):
        self._hook.remove()


PROMPTS = [[3, 4, 5], [6, 7], [8, 9, 10, 11]]


@pytest.mark.parametrize("make", [tiny_models.llama, tiny_models.gpt2])
def test_greedy_assisted_generation_equals_greedy_generation(make):
    model, draft = make(seed=0), make(seed=1)
    params = fastsample.SamplingParams(temperature=0.0, max_tokens=14, eos_token_ids=[])
    plain = fastsample.generate(model, PROMPTS, params)
    assisted = fastsample.generate(model, PROMPTS, params, draft_model=draft, num_draft_tokens=3)
    assert [r.token_ids for r in assisted] == [r.token_ids for r in plain]
    assert all(len(r.token_ids) == 14 for r in assisted)


def test_a_draft_that_agrees_saves_target_passes_and_stops_where_asked():
    """A draft with the target's own weights: most drafts are accepted, so 24 tokens take at
    most half the target forwards the plain loop takes (24); max_tokens and EOS still end each
    sequence exactly, and the same seed gives the same tokens."""
    model, draft = tiny_models.llama(seed=0), tiny_models.llama(seed=0)
    params = fastsample.SamplingParams(temperature=0.8, seed=3, max_tokens=24, eos_token_ids=[],
                                       logprobs=1)
    forwards = Forwards(model)
    try:
        out = fastsample.generate(model, PROMPTS[:1], params, draft_model=draft,
                                  num_draft_tokens=4)
        target_passes = forwards.calls
    finally:
        forwards.remove()
    tokens = out[0].token_ids
    assert len(tokens) == 24 and out[0].finish_reason == "length"
    assert len(out[0].completions[0].logprobs) == 24
    assert target_passes <= 12
    again = fastsample.generate(model, PROMPTS[:1], params, draft_model=draft,
                                num_draft_tokens=4)
    assert again[0].token_ids == tokens
    eos = tokens[10]
    stopped = fastsample.generate(model, PROMPTS[:1],
                                  fastsample.SamplingParams(temperature=0.8, seed=3,
                                                            max_tokens=24, eos_token_ids=[eos]),
                                  draft_model=draft, num_draft_tokens=4)
    assert stopped[0].token_ids == tokens[:tokens.index(eos) + 1]
    assert stopped[0].finish_reason == "eos"


def test_tokens_per_target_pass():
    from fastsample.decode import assisted, generate
    model = tiny_models.llama(seed=0)
    rows = generate._sequence_rows([fastsample.SamplingParams(temperature=0.8, seed=1,
                                                              max_tokens=40, eos_token_ids=[])])
    passes = assisted.Passes()
    steps = list(generate._assisted_rows(model, [PROMPTS[0]], rows, None, None, None, model, 4,
                                         passes))
    assert passes.tokens == len(steps) == 40
    assert passes.tokens / passes.target > 2.5, passes


def test_sampled_assisted_generation_follows_the_models_distribution():
    """600 sequences (seeds 0..599) of three tokens with a draft model that disagrees with the
    target: the second token, which the draft proposed and verify judged, follows the target's
    marginal sum_x p(x) p(y | x) under top_k=6, T = 1.2."""
    model, draft = tiny_models.llama(seed=0), tiny_models.llama(seed=5)
    prompt = [3, 4, 5]
    kw = dict(temperature=1.2, top_k=6, eos_token_ids=[])
    plist = [fastsample.SamplingParams(seed=s, max_tokens=3, **kw) for s in range(600)]
    out = fastsample.generate(model, [prompt] * 600, plist, draft_model=draft,
                              num_draft_tokens=2)
    second = torch.tensor([r.token_ids[1] for r in out])

    def processed(ids):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[:, -1].float()
        z = fastsample.process_logits(logits, temperature=1.2, top_k=6)
        return torch.softmax(z.double(), dim=1)[0]

    first = processed(prompt)
    marginal = sum(first[x] * processed(prompt + [x]) for x in first.nonzero().flatten().tolist())
    counts = torch.bincount(second, minlength=marginal.shape[0]).double()
    # Cells expecting fewer than 5 counts are pooled into one.
    big = marginal * 600 >= 5
    pooled_counts = torch.cat([counts[big], counts[~big].sum()[None]])
    pooled_probs = torch.cat([marginal[big], marginal[~big].sum()[None]])
    df = int((pooled_probs > 0).sum()) - 1
    assert df >= 5
    assert chi_square(pooled_counts, pooled_probs) < chi_square_bound(df)


@pytest.mark.parametrize("kw, error, match", [
    (dict(num_draft_tokens=0), ValueError, "num_draft_tokens=0 is out of range"),
    (dict(num_draft_tokens=2.0), TypeError, "num_draft_tokens must be an int"),
    (dict(params=fastsample.SamplingParams(num_beams=2, temperature=0.0)), ValueError,
     "num_beams"),
    (dict(params=fastsample.SamplingParams(mirostat=2)), ValueError, "mirostat"),
    (dict(draft_model="other vocabulary"), ValueError, "vocabulary"),
])
def test_what_assisted_generation_refuses(kw, error, match):
    model = tiny_models.llama(seed=0)
    args = dict(params=fastsample.SamplingParams(max_tokens=4), draft_model=model,
                num_draft_tokens=2)
    args.update(kw)
    if args["draft_model"] == "other vocabulary":
        args["draft_model"] = tiny_models.llama(vocab=64, seed=1)
    with pytest.raises(error, match=match):
        fastsample.generate(model, PROMPTS[:1], args.pop("params"), **args)
