// Stages 1-3 for one row (hard masks, logit_bias, penalties), as patches over the logits: the
// filters read the row where it lies, with the listed tokens' new keys (views.h, PatchedView).
// Every step touches only the listed tokens (and V/32 words of bits), so the cost grows with the
// lists, not with V x list.
#pragma once
#include "fastsample/dry.h"
#include "fastsample/float_key.h"
#include "fastsample/history_ids.h"
#include "fastsample/sequence_bias.h"
#include "fastsample/views.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowEdits {
  RowList prompt, output;
  const int32_t* output_counts = nullptr;
  float repetition = 1.0f, frequency = 0.0f, presence = 0.0f;
  int64_t no_repeat_ngram = 0;  // bans the ends of repeated n-grams of prompt + output
  DryParams dry;                 // stage 3 after the penalties, over prompt + output
  RowList bias;
  const float* bias_values = nullptr;
  RowList sequences;  // sequence_bias: runs of ids (sequence_bias.h), values at their ends
  const float* sequence_values = nullptr;
  RowList allowed, banned, suppressed;
  RowList begin_suppressed;  // begin_suppress_tokens, at the row's first token
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
  // Counts lose the output's order (Python rejects the pair).
  if (e.no_repeat_ngram < 0 || e.output_counts != nullptr) e.no_repeat_ngram = 0;
  if (!(e.dry.multiplier > 0.0f) || e.dry.multiplier > 3.4e38f || !(e.dry.base >= 1.0f) ||
      e.dry.base > 3.4e38f || e.dry.allowed_length < 0 || e.dry.last_n < -1 ||
      e.dry.last_n == 0 || e.output_counts != nullptr) {
    e.dry.multiplier = 0.0f;
  }
  if (e.sequence_values == nullptr) e.sequences.len = 0;
  e.restrict_allowed = list_has_valid_id(e.allowed, vocab);
  const bool history = e.prompt.len > 0 || e.output.len > 0;
  e.any = ((e.repetition != 1.0f || e.no_repeat_ngram > 0 || e.dry.multiplier > 0.0f) &&
           history) ||
          ((e.frequency != 0.0f || e.presence != 0.0f) && e.output.len > 0) || e.bias.len > 0 ||
          e.sequences.len > 0 ||
          e.restrict_allowed || e.banned.len > 0 || e.suppressed.len > 0 ||
          e.begin_suppressed.len > 0 || e.bitmask != nullptr;
  return e;
}

// A grammar bitmask row that allows every token restricts nothing (an unconstrained row in a
// batch with constrained ones): dropping it keeps such a row off the edited-row paths when it
// has no other edit. One pass over the row's V/32 words, shared by the context's workers.
template <class Ctx>
FS_HOST_DEVICE RowEdits without_full_bitmask(Ctx& ctx, RowEdits e, int64_t vocab) {
  if (e.bitmask == nullptr) return e;
  const int64_t words = num_words(vocab);
  int64_t w0, w1;
  ctx.segment(words, &w0, &w1);
  uint64_t blocked = 0;
  for (int64_t w = w0; w < w1; ++w) {
    // Bits past V in the last word are ignored.
    const uint32_t used =
        w == words - 1 && vocab % 32 != 0 ? (1u << (vocab % 32)) - 1u : 0xffffffffu;
    blocked += (uint32_t(e.bitmask[w]) & used) != used ? 1u : 0u;
  }
  if (ctx.sum_u64(blocked) != 0) return e;
  e.bitmask = nullptr;
  return normalize_edits(e, vocab);
}

// list_patches writes this many list entries per group whatever its count (the extras are
// overwritten by the next group's).
constexpr int kEagerFlatten = 4;

FS_HOST_DEVICE FS_INLINE float clamp_bias(float b) {
  if (!(b == b)) return 0.0f;
  return b < -100.0f ? -100.0f : (b > 100.0f ? 100.0f : b);
}

// *p = max(*p, v) among the group's workers, for entries that start at 0 and values v > 0 (a
// compare-and-swap loop: no plain read races with another worker's store).
template <class Ctx>
FS_HOST_DEVICE void store_max_i32(Ctx& ctx, int32_t* p, int32_t v) {
  int32_t held = ctx.compare_exchange_i32(p, 0, v);
  while (held != 0 && held < v) {
    const int32_t was = ctx.compare_exchange_i32(p, held, v);
    if (was == held) return;
    held = was;
  }
}

// A DRY repeat length as TokenSlots::repeats and the dense `repeats` hold it: plus one (0: none).
FS_HOST_DEVICE FS_INLINE int32_t stored_repeat(int64_t length) {
  return length >= INT32_MAX - 1 ? INT32_MAX : int32_t(length + 1);
}

// The patched path's records of the tokens stages 1-3 list (their stage 1-2 key, their output
// count): an open-addressed table with at least twice as many slots as the call lists ids, so a
// row's scratch grows with its lists, not with V. Inserts claim a slot by compare-and-swap (two
// workers may list one token); lookups come after a sync and find tokens that were inserted.
struct TokenSlots {
  int32_t* tokens;  // -1: free
  uint32_t* keys;
  int32_t* counts;
  int32_t* repeats;  // DRY: 1 + the token's longest repeat (0: none)
  int64_t mask;      // slots - 1

  // Slots for a call whose rows list up to `listed` ids: a power of two >= 2 * listed, >= 16.
  FS_HOST_DEVICE static int64_t capacity(int64_t listed) {
    int64_t n = 16;
    while (n < 2 * listed) n *= 2;
    return n;
  }
  // Fibonacci hashing: the product's top bits, so ids that share their low bits (multiples of
  // a power of two) do not share a home.
  FS_HOST_DEVICE int64_t home(int64_t t) const {
    return int64_t((uint32_t(t) * 0x9E3779B1u) >> leading_zeros(uint32_t(mask)));
  }
  // Token t's slot, claimed if it has none (its count starts at zero).
  template <class Ctx>
  FS_HOST_DEVICE int64_t insert(Ctx& ctx, int64_t t) const {
    int64_t i = home(t);
    // At most half the slots are ever taken, so a free one is always within reach; the bound
    // only keeps the loop finite.
    for (int64_t probe = 0; probe < mask; ++probe) {
      const int32_t held = ctx.compare_exchange_i32(tokens + i, -1, int32_t(t));
      if (held == -1 || held == int32_t(t)) return i;
      i = (i + 1) & mask;
    }
    return i;
  }
  // The slot of a token inserted before the last sync.
  FS_HOST_DEVICE int64_t find(int64_t t) const {
    int64_t i = home(t);
    for (int64_t probe = 0; probe < mask && tokens[i] != int32_t(t); ++probe) i = (i + 1) & mask;
    return i;
  }
};

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

// Stage 1's dense mask as V bits: the grammar bitmask row, or the allow-list's bits (in
// scratch.allowed) ANDed with it; null when the row has neither. Visible to every worker.
template <class Ctx>
FS_HOST_DEVICE const uint32_t* allowed_bits(Ctx& ctx, const RowEdits& e, int64_t vocab,
                                            const RowScratch& s) {
  const uint32_t* allowed = reinterpret_cast<const uint32_t*>(e.bitmask);
  if (!e.restrict_allowed) return allowed;
  int64_t w0, w1;
  ctx.segment(num_words(vocab), &w0, &w1);
  for (int64_t w = w0; w < w1; ++w) s.allowed[w] = 0;
  ctx.sync();
  for_each_listed(ctx, e.allowed, vocab, [&](int64_t t, int64_t) {
    ctx.fetch_or_u32(s.allowed + (t >> 5), 1u << (t & 31));
  });
  ctx.sync();
  if (e.bitmask != nullptr) {
    for (int64_t w = w0; w < w1; ++w) s.allowed[w] &= uint32_t(e.bitmask[w]);
  }
  ctx.sync();
  return s.allowed;
}

// Stage 3 for one token, in contract order: repetition, then x -= f * count + p (output
// tokens only), then x -= its DRY penalty (dry.h; 0 for most). Branch-free, so that
// list_patches' loop over the tokens vectorizes.
struct Stage3 {
  float repetition, frequency, presence;
  bool rep, freq;
  int32_t* marks;    // dense edits: output counts by token, or null when freq is off
  DryParams dry;     // multiplier 0: off
  int32_t* repeats;  // dense edits: each token's stored_repeat (zero on entry and return), or
                     // null when DRY is off

  // A stored_repeat's penalty (0: none).
  FS_HOST_DEVICE float penalty_of(int32_t stored) const {
    return stored > 0 ? dry_penalty(dry, int64_t(stored) - 1) : 0.0f;
  }
  // Token t's DRY penalty, leaving its entry of `repeats` zero.
  FS_HOST_DEVICE float take_penalty(int64_t t) const {
    if (repeats == nullptr) return 0.0f;
    const int32_t stored = repeats[t];
    if (stored == 0) return 0.0f;
    repeats[t] = 0;
    return penalty_of(stored);
  }

  // Token t's output count, leaving its mark zero; `slot` is t for an output token, else an
  // entry that is always zero (marks[V]): prompt tokens then read no line of `marks` of their
  // own, without a branch on which kind of token t is.
  FS_HOST_DEVICE FS_INLINE int32_t take_count(int64_t slot) const {
    if (!freq) return 0;
    const int32_t count = marks[slot];
    marks[slot] = 0;
    return count;
  }
  FS_HOST_DEVICE FS_INLINE uint32_t apply(uint32_t key, int32_t count, float penalty) const {
    float v = key_to_float(key);
    // Selects, not branches: the sign of a logit, and whether a token was generated, are coin
    // flips to a branch predictor (+0 and -0 give 0 either way; x - 0 == x).
    const uint32_t negative = 0u - (float_bits(v) >> 31);
    const float repeated = bits_float((float_bits(v / repetition) & ~negative) |
                                      (float_bits(v * repetition) & negative));
    v = rep ? repeated : v;
    const uint32_t generated = 0u - uint32_t(freq && count > 0);
    v = v - bits_float(float_bits(frequency * float(count) + presence) & generated);
    v = v - penalty;  // x - 0 == x (and -0 - 0 == -0)
    return KeyLoader<DType::kFloat32>::key(float_bits(v));  // stage 0 again: NaN, inf
  }
};

// Lists the set bits of a | b in groups [g0, g1) (this worker's) as token ids in token order,
// at this worker's place in a list the group's workers share (an exclusive scan of their
// counts): [*first, *end). group_start (may be null) gets each group's first index, and its
// entry past the last group the list's length. The bits become tokens before anything reads
// them, so the loops that use the list have no data-dependent exits.
template <class Ctx>
FS_HOST_DEVICE void list_set_bits(Ctx& ctx, const uint32_t* a, const uint32_t* b, int64_t g0,
                                  int64_t g1, int64_t words, int32_t* tokens,
                                  int32_t* group_start, int32_t* first, int32_t* end) {
  static_assert(kGroup == 64, "a group is two bitset words");
  const int64_t w0 = 2 * g0, w1 = 2 * g1 < words ? 2 * g1 : words;
  uint64_t mine = 0;
  for (int64_t w = w0; w < w1; ++w) mine += uint64_t(popcount(a[w] | b[w]));
  uint64_t total = 0;
  *first = int32_t(ctx.exclusive_scan_u64(mine, &total));
  *end = *first + int32_t(mine);
  int32_t at = *first;
  for (int64_t g = g0; g < g1; ++g) {
    if (group_start != nullptr) group_start[g] = at;
    // A group's bits as one 64-bit word (its second half is zero past the last token).
    const int64_t w = 2 * g;
    uint64_t bits = uint64_t(a[w] | b[w]);
    if (w + 1 < words) bits |= uint64_t(a[w + 1] | b[w + 1]) << 32;
    if (bits == 0) continue;  // most groups, when the lists are short
    const int n = popcount64(bits);
    // kEagerFlatten tokens without a branch on the count (a group holds one to three patches
    // in a long history), where the extra writes stay inside this worker's part of the list.
    int k = 0;
    if (at + kEagerFlatten <= *end) {
      for (; k < kEagerFlatten; ++k) {
        tokens[at + k] = int32_t(g * kGroup + trailing_zeros64(bits | (uint64_t(1) << 63)));
        bits &= bits - 1;
      }
    }
    for (; k < n; ++k) {
      tokens[at + k] = int32_t(g * kGroup + trailing_zeros64(bits));
      bits &= bits - 1;
    }
    at += n;
  }
  const int64_t groups = (words + 1) / 2;
  if (group_start != nullptr && g1 == groups) group_start[groups] = int32_t(total);
}

// Lists the patched tokens of this worker's groups in token order (the set bits of `seen` |
// `edited`), with their final keys and raw keys, and fills view.gmax_hint. A token in `seen` gets
// stage 3 here, from its stage 1-2 value (its slot's key, when `edited`) or its raw key, and the
// count of its output occurrences (its slot's count, when `counted`). In token order the list is born grouped (no
// sort, no random writes) and the row is read ascending. The bits become tokens first, so the
// loop that loads keys has no data-dependent exits and its loads overlap.
// Each group's maximum is decided by its raw maximum and its patches (a patch at least as large,
// or the raw maximum held by an unpatched token), else 0: that group is re-read.
template <class Ctx, DType D>
FS_HOST_DEVICE void list_patches(Ctx& ctx, const RowView<D>& raw, bool dense_mask,
                                 const RowScratch& s, const Stage3& stage3) {
  static_assert(kGroup == 64, "a group is two bitset words");
  const int64_t vocab = raw.size();
  const int64_t groups = num_groups(vocab);
  const int64_t words = num_words(vocab);
  const uint32_t* const seen = s.seen;
  uint32_t* const edited = s.edited;
  const TokenSlots slots{s.slot_tokens, s.slot_keys, s.slot_counts, s.slot_repeats,
                         s.slot_mask};
  int32_t* const tokens = s.list_tokens;
  uint32_t* const keys = s.list_keys;
  uint32_t* const raw_keys = s.list_raw_keys;
  uint32_t* const gmax = s.group_max;
  uint32_t* const held = s.max_patched;
  const uint32_t* const raw_gmax = s.raw_group_max;
  int64_t g0, g1;
  ctx.segment(groups, &g0, &g1);
  const int64_t w0 = 2 * g0, w1 = 2 * g1 < words ? 2 * g1 : words;
  int32_t first, at;
  list_set_bits(ctx, seen, edited, g0, g1, words, tokens, s.group_start, &first, &at);
  for (int64_t g = g0; g < g1; ++g) {
    gmax[g] = 0;  // the patches' maximum, first
    held[g] = 0;
  }
  // Each token's raw key, its key after stages 1-2, and its output count (-1: stage 3 does not
  // reach it); then stage 3 over the list (a loop that vectorizes); then the group maxima.
  int32_t* const counts = s.list_counts;
  float* const penalties = s.list_penalties;
  const bool dry = stage3.dry.multiplier > 0.0f;
  for (int32_t i = first; i < at; ++i) {
    const int64_t t = tokens[i];
    const uint32_t raw_key = raw.key(t);
    raw_keys[i] = raw_key;
    keys[i] = bit_is_set(edited, t) ? slots.keys[slots.find(t)] : raw_key;
    const int64_t slot = bit_is_set(s.counted, t) ? slots.find(t) : -1;
    counts[i] = !bit_is_set(seen, t) ? -1 : slot >= 0 ? slots.counts[slot] : 0;
    penalties[i] = dry && slot >= 0 ? stage3.penalty_of(slots.repeats[slot]) : 0.0f;
  }
  for (int32_t i = first; i < at; ++i) {
    const uint32_t penalized = stage3.apply(keys[i], counts[i], penalties[i]);
    keys[i] = counts[i] >= 0 ? penalized : keys[i];
  }
  for (int32_t i = first; i < at; ++i) {
    const int64_t g = tokens[i] / kGroup;
    gmax[g] = keys[i] > gmax[g] ? keys[i] : gmax[g];
    held[g] |= uint32_t(raw_keys[i] == raw_gmax[g]);
  }
  for (int64_t w = w0; w < w1; ++w) edited[w] |= seen[w];
  for (int64_t g = g0; g < g1; ++g) {
    const uint32_t raw_max = raw_gmax[g], patch_max = gmax[g];
    const bool decided = !dense_mask && !(patch_max < raw_max && held[g] != 0);
    gmax[g] = !decided ? 0u : (patch_max > raw_max ? patch_max : raw_max);
  }
  ctx.sync();
}

// Stages 1-3 of `raw` as a PatchedView over scratch (list_*, group_start, edited, allowed,
// raw_group_max, group_max as the hint). Stages 1-2 give the few masked and biased tokens a key
// in their slot (TokenSlots); stage 3 marks its tokens in `seen` (and counts output tokens in
// their slots), and list_patches applies it while it lists every patched token in token order.
// Bitsets and slots are cleared here: nothing is carried from row to row.
template <class Ctx, DType D>
FS_HOST_DEVICE PatchedView<D> edit_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& e,
                                       const RowScratch& s) {
  const int64_t vocab = raw.size();
  const float neg_inf = bits_float(kNegInfBits);
  // The raw row's group maxima first: a streaming pass that also brings the row into cache for
  // the reads below. Groups without a patch keep these maxima, and raw logprobs start from them.
  ctx.group_max(raw, s.raw_group_max);
  int64_t w0, w1;
  ctx.segment(num_words(vocab), &w0, &w1);
  for (int64_t w = w0; w < w1; ++w) {
    s.edited[w] = 0;
    s.seen[w] = 0;
    s.counted[w] = 0;
  }
  const TokenSlots slots{s.slot_tokens, s.slot_keys, s.slot_counts, s.slot_repeats,
                         s.slot_mask};
  int64_t c0, c1;
  ctx.segment(s.slot_mask + 1, &c0, &c1);
  for (int64_t i = c0; i < c1; ++i) {
    slots.tokens[i] = -1;
    slots.counts[i] = 0;
    slots.repeats[i] = 0;
  }
  // Stage 1, dense: the grammar bitmask, or the allow-list's bits ANDed with it.
  const uint32_t* allowed = allowed_bits(ctx, e, vocab, s);
  ctx.sync();
  // Within a step every write to a token stores the same value (or one worker owns the token),
  // so the races are benign; bits are set atomically, as neighbours share a word.
  const auto key_of = [](float v) {
    return KeyLoader<DType::kFloat32>::key(float_bits(v));  // stage 0 again: NaN, inf
  };
  const auto store = [&](int64_t t, float v) {
    slots.keys[slots.insert(ctx, t)] = key_of(v);
    ctx.fetch_or_u32(s.edited + (t >> 5), 1u << (t & 31));
  };
  const auto value = [&](int64_t t) {
    return key_to_float(bit_is_set(s.edited, t) ? slots.keys[slots.find(t)] : raw.key(t));
  };
  // Stage 1, sparse: banned and suppressed tokens, and the ends of repeated n-grams.
  const auto mask = [&](int64_t t, int64_t) { store(t, neg_inf); };
  for_each_listed(ctx, e.banned, vocab, mask);
  for_each_listed(ctx, e.suppressed, vocab, mask);
  for_each_listed(ctx, e.begin_suppressed, vocab, mask);
  for_each_repeated_ngram_end(ctx, HistoryIds{e.prompt, e.output, vocab}, e.no_repeat_ngram,
                              mask);
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
  // Then sequence_bias: one worker per token (the owner of its sequences' group).
  if (e.sequences.len > 0) {
    for_each_sequence_bias(ctx, e.sequences, e.sequence_values,
                           HistoryIds{e.prompt, e.output, vocab},
                           [&](int64_t t, float sum, int64_t) { store(t, value(t) + sum); });
    ctx.sync();
  }
  // Stage 3's tokens: repetition reaches prompt + output, frequency and presence the output
  // tokens, by their counts (accumulated here, or the caller's), DRY the tokens that would
  // extend a repeat, by their longest repeat. `counted`: the tokens with a slot for these.
  const bool rep = e.repetition != 1.0f;
  const bool freq = e.frequency != 0.0f || e.presence != 0.0f;
  const bool counted = freq && e.output_counts == nullptr;
  const auto mark = [&](int64_t t) { ctx.fetch_or_u32(s.seen + (t >> 5), 1u << (t & 31)); };
  for_each_dry_repeat(ctx, HistoryIds{e.prompt, e.output, vocab}, e.dry,
                      [&](int64_t t, int64_t length, int64_t) {
                        mark(t);
                        ctx.fetch_or_u32(s.counted + (t >> 5), 1u << (t & 31));
                        store_max_i32(ctx, slots.repeats + slots.insert(ctx, t),
                                      stored_repeat(length));
                      });
  if (rep || freq) {
    for_each_listed(ctx, e.output, vocab, [&](int64_t t, int64_t j) {
      mark(t);
      if (freq) ctx.fetch_or_u32(s.counted + (t >> 5), 1u << (t & 31));
      if (counted) {
        ctx.fetch_add_i32(slots.counts + slots.insert(ctx, t), 1);
      } else if (freq) {
        slots.counts[slots.insert(ctx, t)] = e.output_counts[j];  // one per token (Python checks)
      }
    });
    if (rep) for_each_listed(ctx, e.prompt, vocab, [&](int64_t t, int64_t) { mark(t); });
  }
  ctx.sync();
  const Stage3 stage3{e.repetition, e.frequency, e.presence, rep, freq, nullptr, e.dry, nullptr};
  list_patches(ctx, raw, allowed != nullptr, s, stage3);
  return PatchedView<D>{raw, s.edited, allowed, s.raw_group_max, s.list_tokens,
                        s.list_keys, s.group_start, s.group_max};
}

FS_CODE_END
}  // namespace fastsample
