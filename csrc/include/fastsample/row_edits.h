// Stages 1-3 for one row (hard masks, logit_bias, penalties), written into a float32 copy of the
// row that the filters then read instead of the logits. The copy is one pass over V; every
// other step touches only the listed tokens, so the cost grows with the lists, not with V x list.
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

FS_HOST_DEVICE FS_INLINE bool bitmask_allows(const int32_t* words, int64_t token) {
  return words == nullptr || ((uint32_t(words[token >> 5]) >> (token & 31)) & 1u) != 0;
}

FS_HOST_DEVICE FS_INLINE float clamp_bias(float b) {
  if (!(b == b)) return 0.0f;
  return b < -100.0f ? -100.0f : (b > 100.0f ? 100.0f : b);
}

// Calls f(token) for this worker's share of the valid ids in `l`.
template <class Ctx, class F>
FS_HOST_DEVICE void for_each_listed(Ctx& ctx, const RowList& l, int64_t vocab, const F& f) {
  int64_t b, e;
  ctx.segment(l.len, &b, &e);
  for (int64_t j = b; j < e; ++j) {
    const int64_t t = l.ids[j];
    if (t >= 0 && t < vocab) f(t, j);
  }
}

// Writes stages 0-3 of `raw` into x[0, V). `marks` (V counters) and `seen` (V bits) hold zeros
// on entry and on return.
template <class Ctx, class View>
FS_HOST_DEVICE void edit_row(Ctx& ctx, const View& raw, const RowEdits& e, float* x,
                             int32_t* marks, uint32_t* seen) {
  const int64_t vocab = raw.size();
  const float neg_inf = bits_float(kNegInfBits);
  // Stage 0 and the dense masks: the bitmask, and "everything" when an allow-list is given.
  ctx.for_each_chunk(raw, [&](const uint32_t* keys, int64_t first, int n) {
    for (int j = 0; j < n; ++j) {
      const bool masked = e.restrict_allowed || !bitmask_allows(e.bitmask, first + j);
      x[first + j] = masked ? neg_inf : key_to_float(keys[j]);
    }
  });
  ctx.sync();
  // Stage 1, sparse: allowed tokens come back (unless the bitmask forbids them), then banned
  // and suppressed ones go. Every write of a step stores the same value, so races are benign.
  if (e.restrict_allowed) {
    for_each_listed(ctx, e.allowed, vocab, [&](int64_t t, int64_t) {
      x[t] = bitmask_allows(e.bitmask, t) ? key_to_float(raw.key(t)) : neg_inf;
    });
    ctx.sync();
  }
  const auto mask = [&](int64_t t, int64_t) { x[t] = neg_inf; };
  for_each_listed(ctx, e.banned, vocab, mask);
  for_each_listed(ctx, e.suppressed, vocab, mask);
  ctx.sync();
  // Stage 2: one worker adds the biases in list order, so a repeated id adds up the same way on
  // every backend (Python gives each id once).
  if (e.bias.len > 0) {
    if (ctx.rank() == 0) {
      for (int64_t j = 0; j < e.bias.len; ++j) {
        const int64_t t = e.bias.ids[j];
        if (t >= 0 && t < vocab) x[t] = x[t] + clamp_bias(e.bias_values[j]);
      }
    }
    ctx.sync();
  }
  // Stage 3: each listed token once, its own steps in contract order: repetition (tokens of
  // prompt + output), then frequency and presence (output tokens): x -= f * count + p. Output
  // ids go first, so a token's count is known when it is reached; the first worker to claim a
  // token in the `seen` bitset (V bits, small enough to stay in cache) applies both.
  const bool rep = e.repetition != 1.0f;
  const bool freq = e.frequency != 0.0f || e.presence != 0.0f;
  if (!rep && !freq) return;
  const bool counted = freq && e.output_counts == nullptr;
  if (counted) {
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) { ctx.fetch_add_i32(marks + t, 1); });
    ctx.sync();
  }
  const float r = e.repetition, f = e.frequency, p = e.presence;
  const auto apply = [&](int64_t t, int32_t count) {
    const uint32_t bit = 1u << (t & 31);
    if (ctx.fetch_or_u32(seen + (t >> 5), bit) & bit) return;
    float v = x[t];
    if (rep) v = v > 0.0f ? v / r : v * r;
    if (freq && count > 0) v = v - (f * float(count) + p);
    x[t] = v;
  };
  for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t j) {
    apply(t, !freq ? 0 : (counted ? marks[t] : e.output_counts[j]));
  });
  if (rep) for_each_listed(ctx, e.prompt, vocab, [&](int64_t t, int64_t) { apply(t, 0); });
  ctx.sync();
  // Leave `marks` and `seen` zero for the next row (every writer stores zero: benign races).
  for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t) {
    seen[t >> 5] = 0;
    if (counted) marks[t] = 0;
  });
  if (rep) for_each_listed(ctx, e.prompt, vocab, [&](int64_t t, int64_t) { seen[t >> 5] = 0; });
  ctx.sync();
}

FS_CODE_END
}  // namespace fastsample
