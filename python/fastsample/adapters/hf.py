"""Hugging Face transformers generation configs: a GenerationConfig or its dict form."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from ..requests import arguments, decoding
from ..requests.sampling_params import (MAX_TOKENS, MIN_TOKENS, NO_REPEAT_NGRAM_SIZE,
                                        SamplingParams, sequence_bias_items)
from ._fields import (bool_field, check_known, drop_none, int_field, metadata_of, source_range,
                      token_ids)

SOURCE = "GenerationConfig"

# transformers' own defaults for the fields read here (GenerationConfig.__init__).
HF_DEFAULTS = {
    "do_sample": False, "temperature": 1.0, "top_k": 50, "top_p": 1.0, "min_p": None,
    "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "repetition_penalty": 1.0,
    "penalty_alpha": None,
    "no_repeat_ngram_size": 0, "bad_words_ids": None, "suppress_tokens": None,
    "max_new_tokens": None, "max_length": 20, "min_new_tokens": None, "eos_token_id": None,
    "num_beams": 1, "num_return_sequences": 1, "length_penalty": 1.0, "early_stopping": False,
}
SAMPLING_FIELDS = set(HF_DEFAULTS) | {"seed", "begin_suppress_tokens", "sequence_bias"}
# GenerationConfig fields that change which token is chosen and have no fused equivalent (yet),
# with the values that leave them off in transformers: any other value is refused (unless
# lenient, which lists it in metadata["ignored"]) rather than dropped.
SCORE_FIELDS_OFF = {
    "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
    "exponential_decay_length_penalty": (None,), "top_h": (None,),
    "encoder_repetition_penalty": (None, 1.0), "encoder_no_repeat_ngram_size": (None, 0),
    "guidance_scale": (None, 1.0), "diversity_penalty": (None, 0.0),
    "watermarking_config": (None,),
    "remove_invalid_values": (None, False), "token_healing": (None, False),
    "dola_layers": (None,),
}
# GenerationConfig fields that do not change how a token is chosen: kept as metadata.
# min_length counts the prompt, as max_length does: fastsample.transformers.sample_loop converts
# both with the prompt's length. renormalize_logits log-softmaxes the final scores, which
# changes no probability.
METADATA_FIELDS = {
    "pad_token_id", "bos_token_id", "decoder_start_token_id", "num_beam_groups",
    "use_cache", "cache_implementation", "transformers_version", "_from_model_config",
    "min_length", "max_time", "stop_strings",
    "max_parallel_requests",
    "timeout", "extra_body", "return_legacy_cache", "assistant_confidence_threshold",
    "num_assistant_tokens", "num_assistant_tokens_schedule", "prompt_lookup_num_tokens",
    "output_attentions", "output_hidden_states", "output_logits", "output_scores",
    "return_dict_in_generate", "renormalize_logits",
    "low_memory", "compile_config", "disable_compile", "cache_config",
    "generation_kwargs", "trust_remote_code", "is_assistant", "target_lookbehind",
    "max_matching_ngram_size", "assistant_early_exit", "assistant_lookbehind", "base_model_tp_plan",
}


def _as_dict(config: Any) -> dict:
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "to_diff_dict"):
        # Only what differs from transformers' defaults: the object's other attributes vary
        # between transformers versions, and their defaults change nothing.
        return dict(config.to_diff_dict())
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    raise TypeError(f"{SOURCE}: expected a transformers GenerationConfig or a dict, got "
                    f"{type(config).__name__}")


COUNT = arguments.Range("an integer >= 1", 1, arguments.MAX_SEED, integer=True)


def _bad_words(v: Any) -> list:
    """bad_words_ids: a list of token-id lists."""
    if v is None:
        return []
    if not isinstance(v, (list, tuple)) or not all(isinstance(w, (list, tuple)) for w in v):
        raise TypeError(f"{SOURCE}: bad_words_ids must be a list of token-id lists (e.g. "
                        f"[[12], [7, 8]]), got {v!r}")
    words = [token_ids(SOURCE, f"bad_words_ids[{i}]", w) for i, w in enumerate(v)]
    for i, w in enumerate(words):
        if not w:
            raise ValueError(f"{SOURCE}: bad_words_ids[{i}]=[] bans nothing; each entry is a "
                             f"non-empty list of token ids")
    return words


def _is_off(v: Any, off: tuple) -> bool:
    """Whether v is one of the off values: None and bools by identity (True is not 1.0),
    numbers by value (1 is 1.0)."""
    for o in off:
        if o is None or isinstance(o, bool) or v is None or isinstance(v, bool):
            if v is o:
                return True
        elif isinstance(v, (int, float)) and v == o:
            return True
    return False


def _unsupported(d: dict, lenient: bool) -> list:
    """Fields that would change the result and have no fused equivalent (yet)."""
    found = []
    groups = int_field(SOURCE, "num_beam_groups", d.get("num_beam_groups"), COUNT)
    if groups is not None and groups > 1:
        found.append(f"num_beam_groups={groups} (diverse beam search)")
    if d.get("do_sample") is True and (int_field(SOURCE, "num_beams", d.get("num_beams"),
                                                 COUNT) or 1) > 1:
        found.append(f"num_beams={d['num_beams']} with do_sample=True (beam sampling)")
    for name, off in SCORE_FIELDS_OFF.items():
        if not _is_off(d.get(name), off):
            found.append(f"{name}={d.get(name)!r}")
    if found and not lenient:
        raise ValueError(f"{SOURCE}: {'; '.join(found)} not supported by fastsample; remove them, "
                         "or pass lenient=True to ignore them (listed in metadata['ignored'])")
    return found


def with_prompt_length(params: SamplingParams, prompt_length: int) -> SamplingParams:
    """A request's max_length / min_length (a generation config's, counting the prompt, kept in
    metadata by from_hf) as max_tokens / min_tokens for a prompt of `prompt_length` tokens, as
    transformers applies them; the metadata then holds neither. max_new_tokens (max_tokens)
    wins over max_length, as in transformers; min_tokens never exceeds max_tokens."""
    meta = dict(params.metadata)
    max_length, min_length = meta.pop("max_length", None), meta.pop("min_length", None)
    if max_length is None and min_length is None:
        return params
    max_tokens = params.max_tokens
    if max_tokens is None and max_length is not None:
        max_tokens = max(1, int(max_length) - prompt_length)
    min_tokens = max(params.min_tokens, int(min_length or 0) - prompt_length)
    if max_tokens is not None:
        min_tokens = min(min_tokens, max_tokens)
    return replace(params, max_tokens=max_tokens, min_tokens=min_tokens, metadata=meta)


def _cutoff(d: dict, name: str) -> float:
    """epsilon_cutoff / eta_cutoff: transformers applies them only strictly between 0 and 1."""
    v = source_range(SOURCE, name, d[name], 0.0, 1.0)
    return 0.0 if arguments.is_real(v) and v >= 1.0 else v


def from_hf(config: Any, *, lenient: bool = False) -> SamplingParams:
    """SamplingParams from a transformers GenerationConfig or generation_config dict.

    Unset fields take transformers' defaults (HF_DEFAULTS: top_k 50, max_length 20, ...).
    do_sample false means greedy whatever the other fields say. max_new_tokens -> max_tokens
    (max_length counts the prompt too, so it is kept in metadata), min_new_tokens -> min_tokens,
    suppress_tokens and single-token bad_words_ids (but not [eos], as transformers) ->
    banned_token_ids, sequence_bias and multi-token bad_words_ids (a bias of -inf) ->
    sequence_bias, eos_token_id (int or list) -> eos_token_ids, seed -1 -> random.
    typical_p, epsilon_cutoff and eta_cutoff as transformers reads them (a cutoff of 1, which
    transformers skips, is off); no_repeat_ngram_size also when greedy, as transformers.
    begin_suppress_tokens (masked at the first generated token) also when greedy.
    num_return_sequences -> n; num_beams > 1 (with do_sample false) -> beam search with
    length_penalty and early_stopping (without beams those two stay in metadata: transformers
    reads them only in beam search). penalty_alpha > 0 with do_sample false, one beam and
    top_k > 1 -> contrastive search over top_k candidates (elsewhere transformers ignores
    penalty_alpha, and it stays in metadata). num_beams with do_sample true (beam sampling),
    num_beam_groups > 1 and the SCORE_FIELDS_OFF fields set on (forced BOS/EOS, exponential decay, top_h, encoder
    penalties, guidance_scale, diversity_penalty, watermarking, remove_invalid_values,
    token_healing, dola_layers) have no fused equivalent:
    ValueError unless lenient=True. Errors name the config's own fields (max_new_tokens, ...).
    """
    d = _as_dict(config)
    check_known(SOURCE, d, SAMPLING_FIELDS | METADATA_FIELDS | set(SCORE_FIELDS_OFF), lenient)
    d = {**HF_DEFAULTS, **{k: v for k, v in d.items() if v is not None or k not in HF_DEFAULTS}}
    ignored = _unsupported(d, lenient)
    greedy = not bool_field(SOURCE, "do_sample", d.get("do_sample"))
    # Checked whether or not sampling reads them: a bad value is a bad config either way.
    temperature = source_range(SOURCE, "temperature", d["temperature"], 0.0, 3.4e38)
    top_p = source_range(SOURCE, "top_p", d["top_p"], 0.0, 1.0)
    top_k = int_field(SOURCE, "top_k", d.get("top_k"), arguments.TOP_K)
    banned = token_ids(SOURCE, "suppress_tokens", d.get("suppress_tokens")) or []
    eos = d.get("eos_token_id")
    eos = token_ids(SOURCE, "eos_token_id", [eos] if arguments.is_int(eos) else eos)
    # transformers drops [eos] from bad_words_ids: banning EOS would leave no way to stop.
    bad_words = _bad_words(d.get("bad_words_ids"))
    banned += [w[0] for w in bad_words if len(w) == 1 and w[0] not in (eos or ())]
    # transformers runs both as SequenceBiasLogitsProcessor: bad words are a bias of -inf.
    biased = dict(sequence_bias_items(f"{SOURCE}: sequence_bias", d.get("sequence_bias")) or ())
    biased.update((tuple(w), -math.inf) for w in bad_words if len(w) > 1)
    max_new = int_field(SOURCE, "max_new_tokens", d.get("max_new_tokens"), MAX_TOKENS)
    min_new = int_field(SOURCE, "min_new_tokens", d.get("min_new_tokens"), MIN_TOKENS)
    if min_new is not None and max_new is not None and min_new > max_new:
        raise ValueError(f"{SOURCE}: min_new_tokens={min_new} is out of range; allowed: 0 <= "
                         f"min_new_tokens <= max_new_tokens ({max_new})")
    metadata = metadata_of(d, METADATA_FIELDS)
    alpha = _contrastive(d, greedy, top_k, metadata)
    if max_new is None:
        metadata["max_length"] = int_field(SOURCE, "max_length", d.get("max_length"), COUNT)
    if ignored:
        metadata["ignored"] = ignored
    return SamplingParams(**drop_none(dict(
        temperature=0.0 if greedy else temperature,
        top_k=(top_k if alpha else 0) if greedy else (top_k or 0),
        top_p=1.0 if greedy else top_p,
        min_p=None if greedy else d.get("min_p"),
        typical_p=1.0 if greedy else source_range(SOURCE, "typical_p", d["typical_p"], 0.0, 1.0,
                                                  low_open=True),
        epsilon_cutoff=0.0 if greedy else _cutoff(d, "epsilon_cutoff"),
        eta_cutoff=0.0 if greedy else _cutoff(d, "eta_cutoff"),
        repetition_penalty=d.get("repetition_penalty"),
        no_repeat_ngram_size=int_field(SOURCE, "no_repeat_ngram_size",
                                       d.get("no_repeat_ngram_size"), NO_REPEAT_NGRAM_SIZE),
        sequence_bias=tuple(biased.items()) or None,
        begin_suppress_tokens=token_ids(SOURCE, "begin_suppress_tokens",
                                        d.get("begin_suppress_tokens")) or None,
        banned_token_ids=banned or None,
        seed=int_field(SOURCE, "seed", d.get("seed")),
        max_tokens=max_new,
        min_tokens=min_new,
        eos_token_ids=eos,
        penalty_alpha=alpha,
        **_strategy(d, metadata, ignored),
        metadata=metadata,
    )))


def _contrastive(d: dict, greedy: bool, top_k: Any, metadata: dict) -> float:
    """penalty_alpha: contrastive search where transformers runs it (greedy, one beam, top_k >
    1); elsewhere transformers ignores it, and it stays in metadata."""
    alpha = d.get("penalty_alpha")
    if alpha is None:
        return 0.0
    alpha = source_range(SOURCE, "penalty_alpha", alpha, 0.0, 1.0)
    beams = int_field(SOURCE, "num_beams", d.get("num_beams"), decoding.SEQUENCES)
    if alpha > 0 and greedy and beams == 1 and (top_k or 0) > 1:
        return alpha
    if alpha:
        metadata["penalty_alpha"] = alpha
    return 0.0


def _strategy(d: dict, metadata: dict, ignored: list) -> dict:
    """n, num_beams, length_penalty and early_stopping. transformers reads length_penalty and
    early_stopping only in beam search: without beams they stay in metadata, as there."""
    beams = int_field(SOURCE, "num_beams", d.get("num_beams"), decoding.SEQUENCES)
    n = int_field(SOURCE, "num_return_sequences", d.get("num_return_sequences"),
                  decoding.SEQUENCES)
    if any(f.startswith("num_beams=") for f in ignored):  # beam sampling: refused, lenient
        metadata["num_beams"] = beams
        return dict(n=n)
    length_penalty = source_range(SOURCE, "length_penalty", d["length_penalty"], -3.4e38,
                                  3.4e38)
    early_stopping = d["early_stopping"]
    if not decoding.is_early_stopping(early_stopping):
        raise ValueError(f"{SOURCE}: early_stopping={early_stopping!r} is not allowed; use "
                         f"True, False or 'never'")
    if beams == 1:
        if n > 1 and d.get("do_sample") is not True and not d.get("penalty_alpha"):
            raise ValueError(f"{SOURCE}: num_return_sequences={n} with do_sample=False and one "
                             f"beam would return {n} identical sequences (transformers refuses "
                             f"it): set do_sample=True, or num_beams >= {n}")
        if length_penalty != HF_DEFAULTS["length_penalty"]:
            metadata["length_penalty"] = length_penalty
        if early_stopping is not HF_DEFAULTS["early_stopping"]:
            metadata["early_stopping"] = early_stopping
        return dict(n=n)
    if n > beams:
        raise ValueError(f"{SOURCE}: num_return_sequences={n} is out of range with "
                         f"num_beams={beams}; allowed: num_return_sequences <= num_beams")
    return dict(n=n, num_beams=beams, length_penalty=length_penalty,
                early_stopping=early_stopping)
