"""Hugging Face transformers integration (importable only when transformers is installed).

- FastLogitsProcessor: penalties, masks, temperature and every filter as one fused
  call; returns what transformers' processor chain returns. Use it with
  `model.generate(..., logits_processor=LogitsProcessorList([proc]), **proc.generate_kwargs())`:
  generate_kwargs() turns transformers' own warpers off (v5 adds TopK(50) by itself when
  do_sample=True and top_k is unset; it would then filter again after fastsample).
- from_generation_config(config): the processor for a model's GenerationConfig.
- sample_loop: `model.generate(**inputs, custom_generate=fastsample.transformers.sample_loop)`
  runs fastsample's decode loop (Sampler, one fused call per step) with the generation
  config's sampling parameters.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional

import torch

try:
    from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteriaList
except ImportError as e:  # pragma: no cover - exercised only without transformers
    raise ImportError("fastsample.transformers needs the transformers package: "
                      "pip install transformers") from e

from ..decode.beam_search import beam_search
from ..decode.contrastive import contrastive_search
from ..decode.generate import decode_steps
from ..decode.model_io import output_vocab_size, pad_token_id
from ..decode.sampler import Sampler
from ..functional.sampling import process_logits
from ..grammar import GrammarRows, grammar_spec
from ..kernel.param_table import STAGE_5
from ..requests import decoding
from ..requests.arguments import check_scalar
from ..requests.sampling_params import DRY_FIELDS, MIN_TOKENS, SamplingParams
from ..adapters import from_hf
from ..adapters.hf import with_prompt_length


class FastLogitsProcessor(LogitsProcessor):
    """A transformers LogitsProcessor running repetition penalty (over input_ids), temperature,
    top-k, top-p, min-p, top-n-sigma, typical-p, epsilon, eta and XTC as one fused fastsample
    call.

    Args (SamplingParams ranges; defaults are "off"): temperature 1.0 (> 0 here: transformers
    samples after processors), top_k 0, top_p 1.0, min_p 0.0, top_n_sigma 0.0, typical_p 1.0,
    epsilon_cutoff 0.0, eta_cutoff 0.0,
    xtc_threshold 0.1 and xtc_probability 0.0 (XTC's coin: from `seed` at offset = the
    sequence length, so a seeded processor repeats across runs; seed None draws each step's
    seeds from torch's default generator, which torch.manual_seed makes reproducible),
    repetition_penalty 1.0,
    presence_penalty / frequency_penalty 0.0 (over input_ids, i.e. prompt and output alike,
    since a processor cannot tell them apart), no_repeat_ngram_size 0 (over input_ids, as
    transformers' NoRepeatNGramLogitsProcessor), dry_multiplier 0.0, dry_base 1.75,
    dry_allowed_length 2, dry_penalty_last_n -1, dry_sequence_breakers None (llama.cpp's DRY,
    over input_ids), sequence_bias None (transformers' rule, over
    input_ids), begin_suppress_tokens None (masked at a generate's first token), logit_bias, banned_token_ids, allowed_token_ids,
    min_tokens 0 (EOS and stop_token_ids masked until that many tokens follow the prompt, the
    input_ids of a generate's first call), min_length 0 (transformers' min_length: the same
    while input_ids, prompt included, are shorter), structured_output None (a grammar, as SamplingParams holds it: every row of the batch
    follows it; needs `tokenizer`, and EOS ends it: `eos_token_ids`, default the tokenizer's).
    Returns float32 scores [B, V]: scores / T on the keep-set, -inf elsewhere.

    A call whose input_ids extend the last call's by one token continues a generate; any other
    call starts one (its input_ids are the prompt, for min_tokens). With a grammar the
    processor keeps one matcher per row, advanced by each row's last token.
    """

    def __init__(self, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 min_p: float = 0.0, repetition_penalty: float = 1.0,
                 presence_penalty: float = 0.0, frequency_penalty: float = 0.0,
                 logit_bias: Optional[Dict[int, float]] = None, banned_token_ids: Any = None,
                 top_n_sigma: float = 0.0, allowed_token_ids: Any = None,
                 xtc_threshold: float = 0.1, xtc_probability: float = 0.0,
                 seed: Optional[int] = None, structured_output: Any = None,
                 tokenizer: Any = None, eos_token_ids: Any = None, min_tokens: int = 0,
                 stop_token_ids: Any = (), typical_p: float = 1.0, epsilon_cutoff: float = 0.0,
                 eta_cutoff: float = 0.0, no_repeat_ngram_size: int = 0,
                 sequence_bias: Any = None, begin_suppress_tokens: Any = None,
                 min_length: int = 0, dry_multiplier: float = 0.0, dry_base: float = 1.75,
                 dry_allowed_length: int = 2, dry_penalty_last_n: int = -1,
                 dry_sequence_breakers: Any = None):
        self.params = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p,
                                     min_p=min_p, top_n_sigma=top_n_sigma, typical_p=typical_p,
                                     epsilon_cutoff=epsilon_cutoff, eta_cutoff=eta_cutoff,
                                     xtc_threshold=xtc_threshold,
                                     xtc_probability=xtc_probability, seed=seed,
                                     repetition_penalty=repetition_penalty,
                                     presence_penalty=presence_penalty,
                                     frequency_penalty=frequency_penalty,
                                     no_repeat_ngram_size=no_repeat_ngram_size,
                                     dry_multiplier=dry_multiplier, dry_base=dry_base,
                                     dry_allowed_length=dry_allowed_length,
                                     dry_penalty_last_n=dry_penalty_last_n,
                                     dry_sequence_breakers=dry_sequence_breakers,
                                     sequence_bias=sequence_bias,
                                     begin_suppress_tokens=begin_suppress_tokens,
                                     logit_bias=logit_bias,
                                     banned_token_ids=banned_token_ids,
                                     allowed_token_ids=allowed_token_ids,
                                     structured_output=structured_output,
                                     eos_token_ids=eos_token_ids, min_tokens=min_tokens,
                                     stop_token_ids=stop_token_ids)
        self._spec = grammar_spec(self.params.structured_output)
        self._tokenizer = tokenizer
        self._rows: Optional[GrammarRows] = None
        self._last: Optional[torch.Tensor] = None  # input_ids of the last call
        self._start = 0  # input_ids' length at the first call of this generate: the prompt
        eos = self.params.eos_token_ids
        if eos is None and tokenizer is not None and tokenizer.eos_token_id is not None:
            eos = (tokenizer.eos_token_id,)
        self._eos = list(eos or ())
        check_scalar("min_length", min_length, MIN_TOKENS)
        self.min_length = int(min_length)
        for name, value in (("min_tokens", self.params.min_tokens),
                            ("min_length", self.min_length)):
            if value > 0 and not self._eos and not self.params.stop_token_ids:
                raise ValueError(f"{name}={value} masks EOS, but no EOS id is known: pass "
                                 f"eos_token_ids (or a tokenizer with one)")
        if self._spec is not None:
            if tokenizer is None:
                raise ValueError("structured_output needs the model's tokenizer: "
                                 "FastLogitsProcessor(..., tokenizer=...)")
            # Compiled now, so a grammar that does not compile fails here, not mid-generate.
            self._grammar_rows(len(tokenizer)).matchers([self._spec], [self._eos])
        if self.params.temperature == 0.0:
            raise ValueError("temperature=0 is greedy: use do_sample=False in generate instead "
                             "of a sampling processor")

    @classmethod
    def from_params(cls, params: SamplingParams, tokenizer: Any = None,
                    min_length: int = 0) -> "FastLogitsProcessor":
        """The processor for the sampling fields of a SamplingParams (resolved first), and
        transformers' min_length (a generation config's, prompt included: SamplingParams keeps
        it in metadata); structured_output needs `tokenizer`. Raises ValueError for prompt_logprobs, which a
        logits processor cannot run."""
        if params.mirostat:
            raise ValueError(f"mirostat={params.mirostat} keeps state between steps and reads "
                             f"the drawn token, which a logits processor never sees: run it "
                             f"with fastsample.generate, sample_loop (custom_generate) or a "
                             f"fastsample.Sampler")
        if params.prompt_logprobs is not None:
            raise ValueError(f"prompt_logprobs={params.prompt_logprobs!r} cannot be run by a "
                             f"logits processor; score the prompt with "
                             f"fastsample.prompt_logprobs")
        why = decoding.per_step_refusal(params, "FastLogitsProcessor")
        if why:
            raise ValueError(why)
        p = params.resolve()
        return cls(**_stage_5_of(p), repetition_penalty=p.repetition_penalty,
                   presence_penalty=p.presence_penalty,
                   frequency_penalty=p.frequency_penalty,
                   no_repeat_ngram_size=p.no_repeat_ngram_size,
                   **{name: getattr(p, name) for name in DRY_FIELDS},
                   sequence_bias=p.sequence_bias,
                   begin_suppress_tokens=p.begin_suppress_tokens, logit_bias=p.logit_bias,
                   banned_token_ids=p.banned_token_ids, allowed_token_ids=p.allowed_token_ids,
                   seed=p.seed, structured_output=p.structured_output, tokenizer=tokenizer,
                   eos_token_ids=p.eos_token_ids, min_tokens=p.min_tokens,
                   stop_token_ids=p.stop_token_ids, min_length=min_length)

    @staticmethod
    def generate_kwargs() -> Dict[str, Any]:
        """generate() arguments that sample with this processor alone (transformers' own
        temperature, top-k, top-p, min-p, typical, epsilon, eta, repetition, n-gram,
        sequence-bias, bad-words and begin-suppress processors off)."""
        return dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, min_p=None,
                    typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0, repetition_penalty=1.0,
                    no_repeat_ngram_size=0, sequence_bias=None, bad_words_ids=None,
                    begin_suppress_tokens=None)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        p = self.params
        length = input_ids.shape[1]
        # A call that extends the last one's input_ids by a token continues a generate; any
        # other starts one.
        last = self._last
        fresh = not (last is not None and input_ids.shape == (last.shape[0], last.shape[1] + 1)
                     and torch.equal(input_ids[:, :-1], last))
        if fresh:
            self._start = length
        self._last = input_ids
        min_tokens = max(p.min_tokens, self.min_length - self._start)
        # input_ids as the output alone: every penalty, DRY and the n-gram rule read it whole.
        history = (p.repetition_penalty != 1.0 or p.presence_penalty != 0.0
                   or p.frequency_penalty != 0.0 or p.no_repeat_ngram_size > 0
                   or p.dry_multiplier > 0 or p.sequence_bias is not None)
        return process_logits(
            scores, **_stage_5_of(p), seed=p.seed, offset=input_ids.shape[1],
            repetition_penalty=p.repetition_penalty, presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty, no_repeat_ngram_size=p.no_repeat_ngram_size,
            **{name: getattr(p, name) for name in DRY_FIELDS},
            sequence_bias=p.sequence_bias,
            output_token_ids=input_ids if history else None,
            logit_bias=dict(p.logit_bias) if p.logit_bias else None,
            banned_token_ids=list(p.banned_token_ids) if p.banned_token_ids else None,
            allowed_token_ids=(list(p.allowed_token_ids) if p.allowed_token_ids is not None
                               else None),
            min_tokens=min_tokens, num_generated=length - self._start,
            eos_token_id=self._eos if min_tokens > 0 else None,
            stop_token_ids=list(p.stop_token_ids) if min_tokens > 0 else None,
            begin_suppress_tokens=(list(p.begin_suppress_tokens) if p.begin_suppress_tokens
                                   else None),
            token_bitmask=None if self._spec is None else self._grammar_mask(input_ids, scores,
                                                                             fresh))

    def _grammar_rows(self, vocab: int) -> GrammarRows:
        if self._rows is None or self._rows.vocab_size != vocab:
            self._rows = GrammarRows(self._tokenizer, vocab)
        return self._rows

    def _grammar_mask(self, input_ids: torch.Tensor, scores: torch.Tensor,
                      fresh: bool) -> torch.Tensor:
        """This step's mask: each row's matcher advanced by its last token, or fresh rows."""
        rows = self._grammar_rows(scores.shape[1])
        if fresh or len(rows) != input_ids.shape[0]:
            rows.keep([])
            rows.append(rows.matchers([self._spec] * input_ids.shape[0],
                                      [self._eos] * input_ids.shape[0]))
        else:
            rows.accept(input_ids[:, -1].tolist())
        return rows.bitmask(scores.device)


def _stage_5_of(p: SamplingParams) -> Dict[str, Any]:
    """A request's stage 4-5 parameters, as process_logits' keywords."""
    return {name: getattr(p, name) for name in STAGE_5}


def from_generation_config(config: Any) -> FastLogitsProcessor:
    """The FastLogitsProcessor for a GenerationConfig (transformers' defaults for unset fields;
    fields only a decode loop applies, like max_new_tokens, are generate's). A field that would
    change the scores and that fastsample does not run (beams, penalty_alpha, ...: those
    `from_hf` refuses) is a ValueError naming it."""
    params = from_hf(config, lenient=True)
    ignored = params.metadata.get("ignored")
    if ignored:
        raise ValueError(f"from_generation_config cannot run {'; '.join(ignored)}; remove them "
                         f"from the generation config")
    return FastLogitsProcessor.from_params(params,
                                           min_length=params.metadata.get("min_length") or 0)


def sample_loop(model: Any, input_ids: torch.LongTensor, logits_processor: Any = None,
                stopping_criteria: Any = None, generation_config: Any = None,
                synced_gpus: bool = False, streamer: Any = None, structured_output: Any = None,
                grammar_tokenizer: Any = None, **model_kwargs: Any) -> torch.LongTensor:
    """A `custom_generate` callable: generate(**inputs, custom_generate=sample_loop) decodes
    with fastsample's Sampler. Sampling parameters, max_new_tokens, min_new_tokens,
    num_return_sequences and EOS come from the generation config: the logits processors
    transformers builds from it are fastsample's fused chain here, and one given to generate
    beside them (logits_processor=..., prefix_allowed_tokens_fn) is refused, since it would not
    run. The stopping criteria generate passes (max_time, a caller's own) are applied after
    every step to the running rows, with scores=None (stop_strings needs generate's tokenizer,
    which transformers does not hand to custom_generate loops: use fastsample.generate's stop). Returns sequences
    [B x num_return_sequences, L + new] padded with the pad id, as transformers' sampling does
    (a GenerateDecoderOnlyOutput holding them with return_dict_in_generate=True; output_scores,
    output_logits, output_attentions and output_hidden_states are refused); transformers has
    repeated each prompt num_return_sequences times, and copy j of a prompt is seeded seed + j
    (when the config has a seed).

    generate(..., structured_output=..., grammar_tokenizer=tok) constrains every row by that
    grammar (SamplingParams.structured_output; transformers keeps generate's own `tokenizer`
    argument to itself, hence the name)."""
    params = _loop_params("sample_loop", generation_config, input_ids)
    _refuse_added_processors("sample_loop", model, logits_processor, generation_config,
                             input_ids, model_kwargs)
    _refuse_unproduced_outputs("sample_loop", generation_config)
    if params.num_beams > 1:
        raise ValueError(f"sample_loop samples: num_beams={params.num_beams} is beam search; "
                         f"use custom_generate=fastsample.transformers.beam_search_loop")
    if params.penalty_alpha > 0:
        raise ValueError(f"sample_loop samples: penalty_alpha={params.penalty_alpha} is "
                         f"contrastive search; use "
                         f"custom_generate=fastsample.transformers.contrastive_search_loop")
    if structured_output is not None:
        params = _replace(params, structured_output=structured_output)
    eos = params.eos_token_ids
    pad_id = _pad_id(generation_config, eos)
    mask = _mask(input_ids, model_kwargs)
    sampler = Sampler(output_vocab_size(model), device=model.device, eos_token_id=eos,
                      tokenizer=grammar_tokenizer)
    for row in range(input_ids.shape[0]):
        copy = _replace(params, n=1, seed=decoding.sequence_seed(params.seed, row % params.n))
        sampler.add(row, copy, input_ids[row][mask[row] > 0].tolist())
    generated = [[] for _ in range(input_ids.shape[0])]
    if streamer is not None:
        streamer.put(input_ids.cpu())

    # The Sampler stops rows on max length and EOS: only the other criteria need the ids.
    added = StoppingCriteriaList(_added_criteria(model, stopping_criteria, generation_config))

    def stop(rows: List[int]) -> List[int]:
        # Running rows have stepped together: their sequences have one length.
        ids = torch.cat([input_ids[rows].cpu(), torch.tensor([generated[r] for r in rows],
                                                             dtype=input_ids.dtype)], dim=1)
        done = added(ids.to(input_ids.device), None)
        return [r for r, d in zip(rows, done.tolist()) if d]

    steps = decode_steps(model, input_ids, mask, sampler, pad_id, stop=stop if added else None)
    for row, res in steps:
        generated[row].append(res.token)
        if streamer is not None:
            streamer.put(torch.tensor([res.token]))
    if streamer is not None:
        streamer.end()
    return _generate_output(generation_config, _sequences(input_ids, generated, pad_id))


def beam_search_loop(model: Any, input_ids: torch.LongTensor, logits_processor: Any = None,
                     stopping_criteria: Any = None, generation_config: Any = None,
                     synced_gpus: bool = False, streamer: Any = None,
                     **model_kwargs: Any) -> torch.LongTensor:
    """A `custom_generate` callable: generate(**inputs, num_beams=k,
    custom_generate=beam_search_loop) runs fastsample's beam search (transformers' algorithm;
    each beam's log-probabilities and top candidates from one fused call, the generation
    config's processors applied per beam as fastsample's stages 1-3: docs/decode_loop.md).
    num_beams, num_return_sequences, length_penalty, early_stopping, max_new_tokens (or
    max_length), min_new_tokens and EOS come from the generation config. Returns sequences
    [B x num_return_sequences, L + new], best beam first, padded as transformers pads beams
    (with the pad id, or the first EOS id where the pad id is 0)."""
    if streamer is not None:
        raise ValueError("beam_search_loop cannot stream: which beams are returned is only "
                         "known at the end (transformers refuses a streamer with beams too)")
    params = _loop_params("beam_search_loop", generation_config, input_ids)
    _refuse_added_processors("beam_search_loop", model, logits_processor, generation_config,
                             input_ids, model_kwargs)
    _refuse_added_criteria("beam_search_loop", model, stopping_criteria, generation_config)
    _refuse_unproduced_outputs("beam_search_loop", generation_config)
    if params.penalty_alpha > 0:
        raise ValueError("beam_search_loop runs beams: penalty_alpha is contrastive search; use "
                         "custom_generate=fastsample.transformers.contrastive_search_loop")
    k = max(params.num_beams, params.n)
    mask = _mask(input_ids, model_kwargs)
    # transformers has repeated each prompt max(num_beams, num_return_sequences) times.
    prompts = [input_ids[row][mask[row] > 0].tolist() for row in range(0, input_ids.shape[0], k)]
    eos = params.eos_token_ids
    pad_id = _pad_id(generation_config, eos)
    if params.num_beams < 2:
        raise ValueError(f"beam_search_loop runs beam search: num_beams={params.num_beams}; set "
                         f"num_beams >= 2 (with do_sample false), or use "
                         f"custom_generate=fastsample.transformers.sample_loop")
    results = beam_search(model, prompts, [params] * len(prompts), eos_token_ids=eos or (),
                          pad_id=pad_id)
    # transformers' beam search pads with the first EOS id where the pad id is 0.
    fill = (pad_id or eos[0]) if eos else pad_id
    return _generate_output(generation_config, _sequences(
        input_ids[::k].repeat_interleave(params.n, 0),
        [c.token_ids for r in results for c in r.completions], fill), beams=True)


def contrastive_search_loop(model: Any, input_ids: torch.LongTensor, logits_processor: Any = None,
                            stopping_criteria: Any = None, generation_config: Any = None,
                            synced_gpus: bool = False, streamer: Any = None,
                            **model_kwargs: Any) -> torch.LongTensor:
    """A `custom_generate` callable: generate(**inputs, penalty_alpha=0.6, top_k=4,
    custom_generate=contrastive_search_loop) runs fastsample's contrastive search
    (transformers 4.x's, which transformers 5 moved out of the library; docs/decode_loop.md).
    penalty_alpha, top_k, max_new_tokens (or max_length), min_new_tokens, EOS and the
    processors fastsample runs (stages 1-3) come from the generation config. Returns sequences
    [B, L + new] padded with the pad id."""
    if streamer is not None:
        raise ValueError("contrastive_search_loop does not stream; generate without a streamer")
    params = _loop_params("contrastive_search_loop", generation_config, input_ids)
    _refuse_added_processors("contrastive_search_loop", model, logits_processor,
                             generation_config, input_ids, model_kwargs)
    _refuse_added_criteria("contrastive_search_loop", model, stopping_criteria,
                           generation_config)
    _refuse_unproduced_outputs("contrastive_search_loop", generation_config)
    if params.penalty_alpha == 0.0:
        raise ValueError("contrastive_search_loop needs penalty_alpha > 0 and top_k > 1 with "
                         "do_sample false (transformers' contrastive search); got "
                         f"penalty_alpha={generation_config.penalty_alpha!r}, "
                         f"top_k={generation_config.top_k!r}, "
                         f"do_sample={generation_config.do_sample!r}")
    mask = _mask(input_ids, model_kwargs)
    prompts = [input_ids[row][mask[row] > 0].tolist() for row in range(input_ids.shape[0])]
    eos = params.eos_token_ids
    pad_id = _pad_id(generation_config, eos)
    results = contrastive_search(model, prompts, [params] * len(prompts),
                                 eos_token_ids=eos or (), pad_id=pad_id)
    return _generate_output(generation_config,
                            _sequences(input_ids, [r.token_ids for r in results], pad_id))


def _refuse_added_processors(loop: str, model: Any, logits_processor: Any,
                             generation_config: Any, input_ids: torch.Tensor,
                             model_kwargs: Dict[str, Any]) -> None:
    """A loop runs the generation config's processors as fastsample's fused chain; one that
    generate() was given beside them, or in place of one it builds (transformers lets a
    caller's instance of a built type win), would not run: refused, naming it."""
    if not logits_processor:
        return
    built = model._get_logits_processor(
        generation_config=generation_config, input_ids_seq_length=input_ids.shape[1],
        encoder_input_ids=input_ids, logits_processor=LogitsProcessorList(),
        device=input_ids.device,
        model_kwargs=dict(model_kwargs))
    added = [type(p).__name__ for p in logits_processor if not _built(p, built)]
    if added:
        raise ValueError(
            f"{loop} runs the generation config's sampling as fastsample's fused chain, where "
            f"{', '.join(added)} (given to generate) would not run; express it as a generation "
            f"config field, or decode with model.generate's own loop and "
            f"fastsample.transformers.FastLogitsProcessor")


def _built(item: Any, built: Any) -> bool:
    """Whether `item` is one of `built` (same type, same settings): one transformers made."""
    return any(type(b) is type(item) and _same_settings(vars(b), vars(item)) for b in built)


def _same_settings(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
                    and x.shape == y.shape and torch.equal(x.cpu(), y.cpu())):
                return False
        elif key.startswith("_"):
            continue  # caches and clocks (a criterion's start time), not settings
        else:
            try:
                if not bool(x == y):
                    return False
            except (TypeError, ValueError, RuntimeError):
                return False
    return True


# The stopping criteria generate() builds from max_length and EOS, which every loop applies
# itself (the Sampler's max_new_tokens and EOS ids; beam and contrastive search's own).
_OWN_CRITERIA = ("MaxLengthCriteria", "EosTokenCriteria")


def _added_criteria(model: Any, stopping_criteria: Any, generation_config: Any) -> list:
    """The criteria in `stopping_criteria` other than the max-length and EOS ones generate()
    built from the config (which every loop applies itself): max_time, stop_strings, a caller's
    own, or a caller's own max-length / EOS instance."""
    criteria = list(stopping_criteria or ())
    if not any(type(c).__name__ in _OWN_CRITERIA for c in criteria):
        return criteria
    # Only the max-length and EOS criteria are compared: stop_strings would need the tokenizer
    # generate() was given, which it does not pass on.
    config = copy.copy(generation_config)
    config.stop_strings = None
    config.max_time = None
    built = model._get_stopping_criteria(generation_config=config,
                                         stopping_criteria=StoppingCriteriaList())
    return [c for c in criteria if type(c).__name__ not in _OWN_CRITERIA or not _built(c, built)]


def _refuse_added_criteria(loop: str, model: Any, stopping_criteria: Any,
                           generation_config: Any) -> None:
    """Beam and contrastive search stop on max length and EOS as transformers' config says; any
    other criterion would not run: refused, naming it."""
    other = [type(c).__name__
             for c in _added_criteria(model, stopping_criteria, generation_config)]
    if other:
        raise ValueError(f"{loop} stops on max_length / max_new_tokens and EOS as the "
                         f"generation config sets them; {', '.join(other)} (max_time, "
                         f"stop_strings or generate's stopping_criteria) would not run: remove "
                         f"it, or sample with custom_generate=fastsample.transformers.sample_loop")


_OUTPUT_FLAGS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")


def _refuse_unproduced_outputs(loop: str, generation_config: Any) -> None:
    asked = [f for f in _OUTPUT_FLAGS if getattr(generation_config, f, False)]
    if asked:
        raise ValueError(f"{loop} returns sequences only: {', '.join(f'{f}=True' for f in asked)}"
                         f" is not produced; generate without it")


def _generate_output(generation_config: Any, sequences: torch.LongTensor,
                     beams: bool = False) -> Any:
    """sequences, or transformers' output object holding them (return_dict_in_generate)."""
    if not getattr(generation_config, "return_dict_in_generate", False):
        return sequences
    from transformers.generation.utils import (GenerateBeamDecoderOnlyOutput,
                                               GenerateDecoderOnlyOutput)
    return (GenerateBeamDecoderOnlyOutput if beams else GenerateDecoderOnlyOutput)(
        sequences=sequences)


def _loop_params(loop: str, generation_config: Any, input_ids: torch.Tensor) -> SamplingParams:
    """The generation config as SamplingParams for a custom_generate loop, max_length and
    min_length counted over the padded prompt (as transformers counts them)."""
    params = from_hf(generation_config, lenient=True)
    ignored = params.metadata.get("ignored")
    if ignored:
        # transformers has already expanded the rows for these: running them otherwise would
        # downgrade the request.
        raise ValueError(f"{loop} cannot run {'; '.join(ignored)}; remove them from the "
                         f"generation config, or generate without custom_generate")
    params = with_prompt_length(params, input_ids.shape[1])
    if params.max_tokens is None:
        params = _replace(params, max_tokens=max(1, 20 - input_ids.shape[1]))
    return params


def _pad_id(generation_config: Any, eos: Any) -> int:
    if generation_config.pad_token_id is not None:
        return generation_config.pad_token_id
    return eos[0] if eos else 0


def _mask(input_ids: torch.Tensor, model_kwargs: Dict[str, Any]) -> torch.Tensor:
    mask = model_kwargs.get("attention_mask")
    return torch.ones_like(input_ids) if mask is None else mask


def _sequences(input_ids: torch.Tensor, generated: List[List[int]], pad_id: int
               ) -> torch.LongTensor:
    """The prompts followed by their generated tokens, padded with pad_id to the longest."""
    width = max(len(g) for g in generated)
    out = torch.full((input_ids.shape[0], width), pad_id, dtype=input_ids.dtype)
    for row, g in enumerate(generated):
        out[row, :len(g)] = torch.tensor(g, dtype=input_ids.dtype)
    return torch.cat([input_ids, out.to(input_ids.device)], dim=1)


def _replace(p: SamplingParams, **changes: Any) -> SamplingParams:
    from dataclasses import replace
    return replace(p, **changes)


__all__ = ["FastLogitsProcessor", "from_generation_config", "sample_loop", "beam_search_loop",
           "contrastive_search_loop", "pad_token_id"]
