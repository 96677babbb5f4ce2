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

// Calls f(token, j) for this worker's share of the valid ids in `l`.
template <class Ctx, class F>
FS_HOST_DEVICE void for_each_listed(Ctx& ctx, const RowList& l, int64_t vocab, const F& f) {
  int64_t b, e;
  ctx.segment(l.len, &b, &e);
  for (int64_t j = b; j < e; ++j) {
    const int64_t t = l.ids[j];
    if (t >= 0 && t < vocab) f(t, j);
  }
}

// The patched tokens of `view` (its bitset) as the list in token order, with each group's start,
// and view.gmax_hint: each group's maximum where the raw group maximum and the group's patches
// decide it (a patch at least as large, or the maximum held by an unpatched token), else 0.
// Workers take whole groups (two words each) and write at their rank-ordered offsets.
template <class Ctx, DType D>
FS_HOST_DEVICE void list_patches(Ctx& ctx, const PatchedView<D>& view, const RowScratch& s) {
  static_assert(kGroup == 64, "a group is two bitset words");
  const int64_t words = num_words(view.size());
  const int64_t groups = num_groups(view.size());
  int64_t g0, g1;
  ctx.segment(groups, &g0, &g1);
  const int64_t w0 = 2 * g0, w1 = 2 * g1 < words ? 2 * g1 : words;
  uint64_t count = 0;
  for (int64_t w = w0; w < w1; ++w) count += uint64_t(popcount(s.edited[w]));
  uint64_t total = 0;
  int32_t at = int32_t(ctx.exclusive_scan_u64(count, &total));
  for (int64_t g = g0; g < g1; ++g) {
    s.group_start[g] = at;
    const uint32_t raw_max = view.raw_gmax[g];
    uint32_t patch_max = 0;
    bool max_patched = false;
    for (int64_t w = 2 * g; w < 2 * g + 2 && w < words; ++w) {
      for (uint32_t bits = s.edited[w]; bits != 0; bits &= bits - 1) {
        const int64_t t = (w << 5) + trailing_zeros(bits);
        const uint32_t key = s.patch[t];
        s.list_tokens[at] = int32_t(t);
        s.list_keys[at] = key;
        ++at;
        patch_max = key > patch_max ? key : patch_max;
        max_patched |= view.raw.key(t) == raw_max;
      }
    }
    const bool decided = view.allowed == nullptr && !(patch_max < raw_max && max_patched);
    s.group_max[g] = !decided ? 0u : (patch_max > raw_max ? patch_max : raw_max);
  }
  if (g1 == groups) s.group_start[groups] = int32_t(total);
  ctx.sync();
}

// Stages 1-3 of `raw` as a PatchedView over scratch.patch / edited / allowed / raw_group_max;
// `seen` is scratch too. Those bitsets are cleared here; `marks` (V counters) holds zeros on
// entry and on return.
template <class Ctx, DType D>
FS_HOST_DEVICE PatchedView<D> edit_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& e,
                                       const RowScratch& s) {
  const int64_t vocab = raw.size();
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
  // A listed token's value so far, and its new value. Within a step every write to a token
  // stores the same value (or one worker owns the token), so the races are benign; the bit is
  // set atomically, as neighbours share a word.
  const auto value = [&](int64_t t) {
    return key_to_float(bit_is_set(s.edited, t) ? s.patch[t] : raw.key(t));
  };
  const auto store = [&](int64_t t, float v) {
    s.patch[t] = KeyLoader<DType::kFloat32>::key(float_bits(v));  // stage 0 again: NaN, inf
    ctx.fetch_or_u32(s.edited + (t >> 5), 1u << (t & 31));
  };
  // Stage 1, sparse: banned and suppressed tokens.
  const auto mask = [&](int64_t t, int64_t) { store(t, neg_inf); };
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
  const PatchedView<D> view{raw, s.edited, s.patch, allowed, s.raw_group_max,
                            s.list_tokens, s.list_keys, s.group_start, s.group_max};
  // Stage 3: each listed token once, its own steps in contract order: repetition (tokens of
  // prompt + output), then frequency and presence (output tokens): x -= f * count + p. Output
  // ids go first, so a token's count is known when it is reached; the first worker to claim a
  // token in the `seen` bitset (V bits, small enough to stay in cache) applies both.
  const bool rep = e.repetition != 1.0f;
  const bool freq = e.frequency != 0.0f || e.presence != 0.0f;
  if (!rep && !freq) {
    list_patches(ctx, view, s);
    return view;
  }
  const bool counted = freq && e.output_counts == nullptr;
  if (counted) {
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) { ctx.fetch_add_i32(s.marks + t, 1); });
    ctx.sync();
  }
  const float r = e.repetition, f = e.frequency, p = e.presence;
  const auto apply = [&](int64_t t, int32_t count) {
    const uint32_t bit = 1u << (t & 31);
    if (ctx.fetch_or_u32(s.seen + (t >> 5), bit) & bit) return;
    float v = value(t);
    if (rep) v = v > 0.0f ? v / r : v * r;
    if (freq && count > 0) v = v - (f * float(count) + p);
    store(t, v);
  };
  for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t j) {
    apply(t, !freq ? 0 : (counted ? s.marks[t] : e.output_counts[j]));
  });
  if (rep) for_each_listed(ctx, e.prompt, vocab, [&](int64_t t, int64_t) { apply(t, 0); });
  ctx.sync();
  // Leave `marks` zero for the next row (every writer stores zero: benign races).
  if (counted) {
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) { s.marks[t] = 0; });
  }
  list_patches(ctx, view, s);
  return view;
}

FS_CODE_END
}  // namespace fastsample
