// Stages 1-3 for one row written into a copy of its keys (views.h, DenseView): the way for a
// backend whose context keeps the row's keys in scratch (exec_context.h, kDenseEdits; the CPU).
// Each edit is a store to its token's key; the filters then read plain keys in every pass. The
// cost is one pass that decodes and stores the row (fused with its group maxima) plus
// O(history); no list of patches is built unless raw logprobs ask for one.
#pragma once
#include "fastsample/row_edits.h"
#include "fastsample/row_logprobs.h"

namespace fastsample {
FS_CODE_BEGIN

// Stage 3 over one id list of a dense-edited row (edit_row_dense), a block of ids at a time in
// phases, so that the loads of a block overlap and the penalties vectorize: the tokens this
// worker reaches first (marked in `seen`), then their keys and output counts, then the
// penalties, then the stores (with the group flags and the edit record).
struct DenseStage3 {
  static constexpr int kBlock = 256;
  Stage3 stage3;
  uint32_t* keys;
  uint32_t* seen;
  const uint32_t* edited;   // stages 1-2 recorded these tokens
  const uint32_t* raw_gmax;
  uint32_t* changed;
  uint32_t* rec_keys;       // null: no record
  uint32_t* rec_raw;

  // output: the ids are the output's (their counts are taken from marks); `at`: the record
  // position of the list's first id.
  template <class Ctx>
  FS_HOST_DEVICE void over(Ctx& ctx, const RowList& l, int64_t vocab, bool output,
                           int64_t at) const {
    int64_t b, e;
    ctx.segment(l.len, &b, &e);
    int32_t token[kBlock], pos[kBlock], count[kBlock];
    uint32_t before[kBlock], after[kBlock];
    float penalty[kBlock];
    for (int64_t j0 = b; j0 < e; j0 += kBlock) {
      const int m = int(e - j0 < kBlock ? e - j0 : kBlock);
      int n = 0;
      for (int i = 0; i < m; ++i) {
        const int64_t t = l.ids[j0 + i];
        if (t < 0 || t >= vocab) continue;
        const uint32_t bit = 1u << (t & 31);
        const bool first = (ctx.fetch_or_u32(seen + (t >> 5), bit) & bit) == 0;
        token[n] = int32_t(t);
        pos[n] = int32_t(j0 + i);
        n += first ? 1 : 0;
      }
      for (int i = 0; i < n; ++i) {
        before[i] = keys[token[i]];
        count[i] = output ? stage3.take_count(token[i]) : 0;
        penalty[i] = stage3.take_penalty(token[i]);
      }
      for (int i = 0; i < n; ++i) after[i] = stage3.apply(before[i], count[i], penalty[i]);
      for (int i = 0; i < n; ++i) {
        const int64_t t = token[i];
        keys[t] = after[i];
        const uint32_t raw_max = raw_gmax[t / kGroup];
        if (before[i] == raw_max || after[i] > raw_max) changed[t / kGroup] = 1;
        if (rec_keys != nullptr && !bit_is_set(edited, t)) {
          rec_raw[at + pos[i]] = before[i];
          rec_keys[at + pos[i]] = after[i];
        }
      }
    }
  }
};

// Stages 1-3 of `raw` into scratch.dense_keys, in contract order. `edited` holds the tokens
// stages 1-2 changed, `seen` those stage 3 reached (each once); `marks` holds zeros on entry and
// on return. A group's flag in scratch.max_patched is set when an edit may have changed its
// maximum (its token held the raw maximum, or its new key is above it, or stages 1-2 touched
// it): the other groups keep their raw maxima, and the filters' group-max pass reads only the
// flagged ones (a few percent of the groups in a long history).
// With `record` (raw logprobs will correct the row's mass over the edited tokens: row_logprobs.h),
// the edits are also recorded where the listed ids lie: position i of the banned, suppressed,
// begin-suppressed, bias, sequence_bias, output and (with repetition, no_repeat_ngram_size or
// DRY) prompt ids, in that
// order, gets the key its token had before its first edit (list_raw_keys) and after its last
// (list_keys), or -inf keys (zero mass) where the id is out of range or its token was already
// recorded. Written while each key is in hand, this costs sequential stores, not a list of the
// edited bits and a gather.
template <class Ctx, DType D>
FS_HOST_DEVICE DenseView<D> edit_row_dense(Ctx& ctx, const RowView<D>& raw, const RowEdits& e,
                                           const RowScratch& s, bool record) {
  const int64_t vocab = raw.size();
  const float neg_inf = bits_float(kNegInfBits);
  uint32_t* const keys = s.dense_keys;
  const bool rep = e.repetition != 1.0f;
  const bool freq = e.frequency != 0.0f || e.presence != 0.0f;
  const bool dry = e.dry.multiplier > 0.0f;
  const bool dense_mask = e.restrict_allowed || e.bitmask != nullptr;
  // Where each list's records start; stage-1-2 records (the first n12) name their token, as
  // their final key is read after stage 3.
  const int64_t at_suppressed = e.banned.len, at_begin = at_suppressed + e.suppressed.len;
  const int64_t at_bias = at_begin + e.begin_suppressed.len;
  const int64_t at_sequences = at_bias + e.bias.len;
  const int64_t n12 = at_sequences + e.sequences.len;
  const bool ngram = e.no_repeat_ngram > 0;
  const int64_t at_output = n12;
  const int64_t at_prompt = at_output + (rep || freq || ngram || dry ? e.output.len : 0);
  const int64_t n_record = at_prompt + (rep || ngram || dry ? e.prompt.len : 0);
  record = record && !dense_mask && n_record <= s.list_cap;
  uint32_t* const rec_keys = s.list_keys;
  uint32_t* const rec_raw = s.list_raw_keys;
  int32_t* const rec_token = s.list_tokens;
  if (record) {
    int64_t r0, r1;
    ctx.segment(n_record, &r0, &r1);
    for (int64_t i = r0; i < r1; ++i) {
      rec_keys[i] = kNegInfKey;
      rec_raw[i] = kNegInfKey;
      rec_token[i] = -1;
    }
  }
  uint32_t* const changed = s.max_patched;
  int64_t g0, g1;
  ctx.segment(num_groups(vocab), &g0, &g1);
  for (int64_t g = g0; g < g1; ++g) changed[g] = 0;
  ctx.keys_and_group_max(raw, keys, s.raw_group_max);  // a sync: records and flags are clear
  int64_t w0, w1;
  ctx.segment(num_words(vocab), &w0, &w1);
  for (int64_t w = w0; w < w1; ++w) {
    s.edited[w] = 0;
    s.seen[w] = 0;
  }
  // Stage 1, dense: the grammar bitmask, or the allow-list's bits ANDed with it, cleared into
  // the keys of this worker's words.
  if (dense_mask) {
    const uint32_t* allowed = allowed_bits(ctx, e, vocab, s);
    const int64_t t1 = 32 * w1 < vocab ? 32 * w1 : vocab;
    for (int64_t t = 32 * w0; t < t1; ++t) {
      keys[t] = bit_is_set(allowed, t) ? keys[t] : kNegInfKey;
    }
  }
  ctx.sync();
  // Within a step every write to a token stores the same value (or one worker owns the token),
  // so the races are benign; bits are set atomically, as neighbours share a word. The worker
  // that sets a token's bit first records it, with the raw key read from the logits (another
  // worker may have stored over keys[t] already).
  const auto store = [&](int64_t t, float v, int64_t at) {
    keys[t] = KeyLoader<DType::kFloat32>::key(float_bits(v));  // stage 0 again: NaN, inf
    changed[t / kGroup] = 1;
    const uint32_t bit = 1u << (t & 31);
    const bool first = (ctx.fetch_or_u32(s.edited + (t >> 5), bit) & bit) == 0;
    if (record && first) {
      rec_raw[at] = raw.key(t);
      rec_token[at] = int32_t(t);
    }
  };
  // Stage 1, sparse: banned and suppressed tokens, then the ends of repeated n-grams (recorded
  // where they lie in the history, as stage 3's tokens are; their final key is -inf already).
  for_each_listed(ctx, e.banned, vocab, [&](int64_t t, int64_t j) { store(t, neg_inf, j); });
  for_each_listed(ctx, e.suppressed, vocab,
                  [&](int64_t t, int64_t j) { store(t, neg_inf, at_suppressed + j); });
  for_each_listed(ctx, e.begin_suppressed, vocab,
                  [&](int64_t t, int64_t j) { store(t, neg_inf, at_begin + j); });
  ctx.sync();
  if (ngram) {
    const HistoryIds history{e.prompt, e.output, vocab};
    for_each_repeated_ngram_end(ctx, history, e.no_repeat_ngram, [&](int64_t t, int64_t p) {
      store(t, neg_inf, p < e.prompt.len ? at_prompt + p : at_output + (p - e.prompt.len));
    });
    ctx.sync();
  }
  // Stage 2: one worker adds the biases in list order, so a repeated id adds up the same way on
  // every backend (Python gives each id once).
  if (e.bias.len > 0) {
    if (ctx.rank() == 0) {
      for (int64_t j = 0; j < e.bias.len; ++j) {
        const int64_t t = e.bias.ids[j];
        if (t >= 0 && t < vocab) {
          store(t, key_to_float(keys[t]) + clamp_bias(e.bias_values[j]), at_bias + j);
        }
      }
    }
    ctx.sync();
  }
  // Then sequence_bias: one worker per token (the owner of its sequences' group).
  if (e.sequences.len > 0) {
    for_each_sequence_bias(ctx, e.sequences, e.sequence_values,
                           HistoryIds{e.prompt, e.output, vocab},
                           [&](int64_t t, float sum, int64_t p) {
                             store(t, key_to_float(keys[t]) + sum, at_sequences + p);
                           });
    ctx.sync();
  }
  // Stage 3: output counts first (accumulated here, or the caller's) and DRY's longest repeats,
  // then each token of the output, then of the prompt, once: the worker that first marks it in
  // `seen` applies it (and records it, unless stages 1-2 did). An output token is reached by the
  // output list, so a prompt token that is first here has count zero and reads no line of
  // `marks`. DRY's tokens lie in the history, so each is reached (and its repeat taken).
  if (dry) {
    for_each_dry_repeat(ctx, HistoryIds{e.prompt, e.output, vocab}, e.dry,
                        [&](int64_t t, int64_t length, int64_t) {
                          store_max_i32(ctx, s.repeats + t, stored_repeat(length));
                        });
    ctx.sync();
  }
  if (rep || freq || dry) {
    if (freq) {
      for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t j) {
        if (e.output_counts == nullptr) {
          ctx.fetch_add_i32(s.marks + t, 1);
        } else {
          s.marks[t] = e.output_counts[j];  // one entry per token (Python checks)
        }
      }, [&](int64_t t) { FS_PREFETCH(s.marks + t); });
      ctx.sync();
    }
    const Stage3 stage3{e.repetition, e.frequency, e.presence, rep,
                        freq,         s.marks,     e.dry,      dry ? s.repeats : nullptr};
    const DenseStage3 apply{stage3, keys, s.seen, s.edited, s.raw_group_max, changed,
                            record ? rec_keys : nullptr, rec_raw};
    apply.over(ctx, e.output, vocab, true, at_output);
    ctx.sync();
    if (rep || dry) apply.over(ctx, e.prompt, vocab, false, at_prompt);
  }
  ctx.sync();
  // Stage-1-2 records get their tokens' final keys.
  if (record) {
    int64_t r0, r1;
    ctx.segment(n12, &r0, &r1);
    for (int64_t i = r0; i < r1; ++i) {
      if (rec_token[i] >= 0) rec_keys[i] = keys[rec_token[i]];
    }
  }
  ctx.sync();
  return DenseView<D>{raw, keys, changed, s.raw_group_max, dense_mask, record ? n_record : -1};
}

// Raw logprobs' log mass of a dense-edited row from its mass row_mass (as the PatchedView
// overload in row_logprobs.h), over the edit record; kUnknownLogMass without one, or when the
// correction does not hold (a dense mask, or an edit raised the maximum).
template <class Ctx, DType D>
FS_HOST_DEVICE double raw_log_mass_from_edits(Ctx& ctx, const DenseView<D>& row,
                                              uint64_t row_mass, uint32_t row_max,
                                              uint32_t raw_max, const RowScratch& s) {
  if (row.recorded < 0 || row_max > raw_max || row_mass == 0) return kUnknownLogMass;
  return raw_log_mass_from_lists(ctx, s.list_keys, s.list_raw_keys, row.recorded, row_mass,
                                 row_max, raw_max);
}

FS_CODE_END
}  // namespace fastsample
