// Stages 1-3 for one row (hard masks, logit_bias, penalties), as patches over the logits: the
// filters read the row where it lies, with the listed tokens' new keys (views.h, PatchedView).
// Every step touches only the listed tokens (and V/32 words of bits), so the cost grows with the
// lists, not with V x list.
#pragma once
#include "fastsample/float_key.h"
#include "fastsample/views.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowList {
  const int64_t* ids = nullptr;
  int64_t len = 0;
};

struct RowEdits {
  RowList prompt, output;
  const int32_t* output_counts = nullptr;
  float repetition = 1.0f, frequency = 0.0f, presence = 0.0f;
  RowList bias;
  const float* bias_values = nullptr;
  RowList allowed, banned, suppressed;
  const int32_t* bitmask = nullptr;
  bool restrict_allowed = false;  // allowed holds at least one valid id
  bool any = false;               // some stage changes something in this row
};

FS_HOST_DEVICE inline bool list_has_valid_id(const RowList& l, int64_t vocab) {
  for (int64_t j = 0; j < l.len; ++j) {
    if (l.ids[j] >= 0 && l.ids[j] < vocab) return true;
  }
  return false;
}

// Out-of-range values switch a penalty off (Python rejects them first).
FS_HOST_DEVICE inline RowEdits normalize_edits(RowEdits e, int64_t vocab) {
  if (!(e.repetition > 0.0f) || e.repetition > 3.4e38f) e.repetition = 1.0f;
  if (!(e.frequency == e.frequency) || e.frequency > 3.4e38f || e.frequency < -3.4e38f) e.frequency = 0.0f;
  if (!(e.presence == e.presence) || e.presence > 3.4e38f || e.presence < -3.4e38f) e.presence = 0.0f;
  e.restrict_allowed = list_has_valid_id(e.allowed, vocab);
  const bool history = e.prompt.len > 0 || e.output.len > 0;
  e.any = (e.repetition != 1.0f && history) ||
          ((e.frequency != 0.0f || e.presence != 0.0f) && e.output.len > 0) || e.bias.len > 0 ||
          e.restrict_allowed || e.banned.len > 0 || e.suppressed.len > 0 || e.bitmask != nullptr;
  return e;
}

FS_HOST_DEVICE FS_INLINE float clamp_bias(float b) {
  if (!(b == b)) return 0.0f;
  return b < -100.0f ? -100.0f : (b > 100.0f ? 100.0f : b);
}

// Calls f(token, j) for this worker's share of the valid ids in `l`, and ahead(token) a few ids
// before f reaches that token (to start its scattered loads early).
template <class Ctx, class F, class Ahead>
FS_HOST_DEVICE void for_each_listed(Ctx& ctx, const RowList& l, int64_t vocab, const F& f,
                                    const Ahead& ahead) {
  constexpr int64_t kAhead = 16;
  int64_t b, e;
  ctx.segment(l.len, &b, &e);
  for (int64_t j = b; j < e; ++j) {
    if (j + kAhead < e) {
      const int64_t u = l.ids[j + kAhead];
      if (u >= 0 && u < vocab) ahead(u);
    }
    const int64_t t = l.ids[j];
    if (t >= 0 && t < vocab) f(t, j);
  }
}
template <class Ctx, class F>
FS_HOST_DEVICE void for_each_listed(Ctx& ctx, const RowList& l, int64_t vocab, const F& f) {
  for_each_listed(ctx, l, vocab, f, [](int64_t) {});
}

// Sorts the pending patches (scratch.pending_*, in any order, one per `edited` bit) into the
// view's list by group, and fills view.gmax_hint: each group's maximum where the raw group
// maximum and the group's patches decide it (a patch at least as large, or the maximum held by
// an unpatched token), else 0. A counting sort, counting each group's bits.
template <class Ctx, DType D>
FS_HOST_DEVICE void list_patches(Ctx& ctx, const PatchedView<D>& view, const RowScratch& s) {
  static_assert(kGroup == 64, "a group is two bitset words");
  const int64_t groups = num_groups(view.size());
  const int64_t words = num_words(view.size());
  int64_t g0, g1;
  ctx.segment(groups, &g0, &g1);
  uint64_t mine = 0;
  for (int64_t g = g0; g < g1; ++g) {
    const int32_t count = popcount(view.edited[2 * g]) +
                          (2 * g + 1 < words ? popcount(view.edited[2 * g + 1]) : 0);
    s.group_fill[g] = count;
    mine += uint64_t(count);
  }
  uint64_t total = 0;
  int32_t at = int32_t(ctx.exclusive_scan_u64(mine, &total));
  for (int64_t g = g0; g < g1; ++g) {
    const int32_t count = s.group_fill[g];
    s.group_start[g] = at;
    s.group_fill[g] = at;  // from here on, where the group's next patch goes
    at += count;
  }
  if (g1 == groups) s.group_start[groups] = int32_t(total);
  ctx.sync();
  int64_t p0, p1;
  ctx.segment(int64_t(total), &p0, &p1);
  for (int64_t i = p0; i < p1; ++i) {
    const int32_t t = s.pending_tokens[i];
    const int32_t slot = ctx.fetch_add_i32(s.group_fill + t / kGroup, 1);
    s.list_tokens[slot] = t;
    s.list_keys[slot] = s.pending_keys[i];
  }
  ctx.sync();
  for (int64_t g = g0; g < g1; ++g) {
    const uint32_t raw_max = view.raw_gmax[g];
    uint32_t patch_max = 0;
    bool max_patched;
    for (int32_t i = s.group_start[g]; i < s.group_start[g + 1]; ++i) {
      patch_max = s.list_keys[i] > patch_max ? s.list_keys[i] : patch_max;
    }
    max_patched = bit_is_set(s.max_patched, g);
    const bool decided = view.allowed == nullptr && !(patch_max < raw_max && max_patched);
    s.group_max[g] = !decided ? 0u : (patch_max > raw_max ? patch_max : raw_max);
  }
  ctx.sync();
}

// Stages 1-3 of `raw` as a PatchedView over scratch (list_*, group_start, edited, allowed,
// raw_group_max, group_max as the hint). Stages 1-2 write the few masked and biased tokens to
// scratch.patch (V keys); stage 3 sends each penalized token's final key straight to the
// pending list, so no write lands at a random place in a V-sized array: the patches reach
// their groups by a counting sort over a list as long as the history. `seen` claims each token
// once. Bitsets and counts are cleared here; `marks` (V counters) holds zeros on entry and on
// return.
template <class Ctx, DType D>
FS_HOST_DEVICE PatchedView<D> edit_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& e,
                                       const RowScratch& s) {
  const int64_t vocab = raw.size();
  const int64_t groups = num_groups(vocab);
  const float neg_inf = bits_float(kNegInfBits);
  // The raw row's group maxima first: a streaming pass that also brings the row into cache for
  // the scattered reads below. Groups without a patch keep these maxima, and raw logprobs
  // start from them.
  ctx.group_max(raw, s.raw_group_max);
  int64_t w0, w1;
  ctx.segment(num_words(vocab), &w0, &w1);
  for (int64_t w = w0; w < w1; ++w) {
    s.edited[w] = 0;
    s.seen[w] = 0;
  }
  int32_t* const pending_count = s.group_fill + groups;  // after the per-group counts
  if (ctx.rank() == 0) *pending_count = 0;
  int64_t f0, f1;
  ctx.segment(num_words(groups), &f0, &f1);
  for (int64_t w = f0; w < f1; ++w) s.max_patched[w] = 0;
  // Stage 1, dense: the grammar bitmask, or the allow-list's bits ANDed with it.
  const uint32_t* allowed = reinterpret_cast<const uint32_t*>(e.bitmask);
  if (e.restrict_allowed) {
    for (int64_t w = w0; w < w1; ++w) s.allowed[w] = 0;
    ctx.sync();
    for_each_listed(ctx, e.allowed, vocab, [&](int64_t t, int64_t) {
      ctx.fetch_or_u32(s.allowed + (t >> 5), 1u << (t & 31));
    });
    ctx.sync();
    if (e.bitmask != nullptr) {
      for (int64_t w = w0; w < w1; ++w) s.allowed[w] &= uint32_t(e.bitmask[w]);
    }
    allowed = s.allowed;
  }
  ctx.sync();
  // A token's value so far, and its stage 1-2 value. Within a step every write to a token
  // stores the same value (or one worker owns the token), so the races are benign; bits are
  // set atomically, as neighbours share a word.
  // A token first patched: when it held its group's raw maximum, the group's patched maximum
  // must be read from its keys (list_patches).
  const auto note_raw = [&](int64_t t, uint32_t raw_key) {
    const int64_t g = t / kGroup;
    if (raw_key == s.raw_group_max[g]) ctx.fetch_or_u32(s.max_patched + (g >> 5), 1u << (g & 31));
  };
  const auto value = [&](int64_t t) {
    if (bit_is_set(s.edited, t)) return key_to_float(s.patch[t]);
    const uint32_t k = raw.key(t);
    note_raw(t, k);
    return key_to_float(k);
  };
  const auto key_of = [](float v) {
    return KeyLoader<DType::kFloat32>::key(float_bits(v));  // stage 0 again: NaN, inf
  };
  const auto store = [&](int64_t t, float v) {
    s.patch[t] = key_of(v);
    ctx.fetch_or_u32(s.edited + (t >> 5), 1u << (t & 31));
  };
  // A token's final key, once per token (its `seen` bit is claimed).
  // (Its `edited` bit is set afterwards, from `seen`, one word at a time: a read-modify-write
  // per token here would stall on the loads around it.)
  const auto pend = [&](int64_t t, uint32_t key) {
    const int32_t at = ctx.fetch_add_i32(pending_count, 1);
    s.pending_tokens[at] = int32_t(t);
    s.pending_keys[at] = key;
  };
  const auto claim = [&](int64_t t) {
    const uint32_t bit = 1u << (t & 31);
    return (ctx.fetch_or_u32(s.seen + (t >> 5), bit) & bit) == 0;
  };
  // Stage 1, sparse: banned and suppressed tokens.
  const auto mask = [&](int64_t t, int64_t) {
    note_raw(t, raw.key(t));
    store(t, neg_inf);
  };
  for_each_listed(ctx, e.banned, vocab, mask);
  for_each_listed(ctx, e.suppressed, vocab, mask);
  ctx.sync();
  // Stage 2: one worker adds the biases in list order, so a repeated id adds up the same way on
  // every backend (Python gives each id once).
  if (e.bias.len > 0) {
    if (ctx.rank() == 0) {
      for (int64_t j = 0; j < e.bias.len; ++j) {
        const int64_t t = e.bias.ids[j];
        if (t >= 0 && t < vocab) store(t, value(t) + clamp_bias(e.bias_values[j]));
      }
    }
    ctx.sync();
  }
  // Stage 3: each listed token once, its own steps in contract order: repetition (tokens of
  // prompt + output), then frequency and presence (output tokens): x -= f * count + p. Output
  // ids go first, so a token's count is known when it is reached.
  const bool rep = e.repetition != 1.0f;
  const bool freq = e.frequency != 0.0f || e.presence != 0.0f;
  const bool counted = freq && e.output_counts == nullptr;
  if (rep || freq) {
    if (counted) {
      for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) { ctx.fetch_add_i32(s.marks + t, 1); },
                      [&](int64_t t) { FS_PREFETCH(s.marks + t); });
      ctx.sync();
    }
    const float r = e.repetition, f = e.frequency, p = e.presence;
    const auto ahead = [&](int64_t t) {
      FS_PREFETCH(raw.data + t);
      if (counted) FS_PREFETCH(s.marks + t);
    };
    const auto apply = [&](int64_t t, int32_t count) {
      if (!claim(t)) return;
      float v = value(t);
      if (rep) {
        // A select on the sign bit, not a branch: the sign of a logit is a coin flip to a
        // branch predictor (+0 and -0 give 0 either way).
        const uint32_t negative = 0u - (float_bits(v) >> 31);
        v = bits_float((float_bits(v / r) & ~negative) | (float_bits(v * r) & negative));
      }
      if (freq && count > 0) v = v - (f * float(count) + p);
      pend(t, key_of(v));
    };
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t j) {
      apply(t, !freq ? 0 : (counted ? s.marks[t] : e.output_counts[j]));
    }, ahead);
    if (rep) for_each_listed(ctx, e.prompt, vocab, [&](int64_t t, int64_t) { apply(t, 0); }, ahead);
    ctx.sync();
  }
  // Masked or biased tokens no penalty reached keep their stage 1-2 keys.
  const auto keep_patch = [&](int64_t t, int64_t) {
    if (claim(t)) pend(t, s.patch[t]);
  };
  for_each_listed(ctx, e.banned, vocab, keep_patch);
  for_each_listed(ctx, e.suppressed, vocab, keep_patch);
  for_each_listed(ctx, e.bias, vocab, keep_patch);
  // Leave `marks` zero for the next row (every writer stores zero: benign races).
  if (counted) {
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) { s.marks[t] = 0; });
  }
  ctx.sync();
  // Every pending token was claimed in `seen` (and masked or biased ones are `edited` already).
  for (int64_t w = w0; w < w1; ++w) s.edited[w] |= s.seen[w];
  ctx.sync();
  const PatchedView<D> view{raw, s.edited, allowed, s.raw_group_max, s.list_tokens,
                            s.list_keys, s.group_start, s.group_max};
  list_patches(ctx, view, s);
  return view;
}

FS_CODE_END
}  // namespace fastsample
