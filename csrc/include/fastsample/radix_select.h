// Threshold search by radix select over keys (docs/design.md, "No sort of the vocabulary").
#pragma once
#include "fastsample/common.h"
#include "fastsample/exec_context.h"

namespace fastsample {
FS_CODE_BEGIN

struct KeyRange {
  uint32_t min, max;
};

// The key a selection orders elements by: the element's own key, or (typical-p) a key derived
// from it.
struct SameKey {
  FS_HOST_DEVICE FS_INLINE uint32_t operator()(uint32_t key) const { return key; }
};

// Smallest and largest order key (map(key)) of the elements with key >= lo over the view (the
// whole context); the view holds at least one.
template <class Ctx, class View, class Map = SameKey>
FS_HOST_DEVICE KeyRange key_range_at_least(Ctx& ctx, const View& view, uint32_t lo,
                                           const Map& map = Map{}) {
  uint32_t least = 0xFFFFFFFFu, most = 0;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
    for (int j = 0; j < n; ++j) {
      const uint32_t key = map(keys[j]);
      const bool in = keys[j] >= lo;
      least = in && key < least ? key : least;
      most = in && key > most ? key : most;
    }
  });
  const int64_t min_key = ctx.min_i64(int64_t(least));
  const int64_t max_key = -ctx.min_i64(-int64_t(most));
  return KeyRange{uint32_t(min_key), uint32_t(max_key)};
}

// Largest key t with weight(key >= t) >= need, over elements with key >= lo.
// Weight is a per-element functor returning uint64 (1 for top-k counts, a fixed-point mass for
// top-p). Three passes of 11, 11 and 10 bits. Precondition: the total weight is >= need >= 1.
// map: the key elements are ordered by (t is then a value of map(key)); weight and lo still
// read the element's own key.
// With fewer passes it stops early and returns a lower bound on that key: its leading digits.
// kBits: digit width; 11 (three passes, 2048 bins) for long views, 8 (up to four passes, 256
// bins) for short lists, where zeroing and scanning 2048 bins would cost more than the elements
// and where the leading bits all keys share are found first and skipped.
template <int kBits = kRadixBits, class Ctx, class View, class Weight, class Map = SameKey>
FS_HOST_DEVICE uint32_t radix_select_desc(Ctx& ctx, const View& view, uint32_t lo, uint64_t need,
                                          const Weight& weight, int passes = 4,
                                          const Map& map = Map{}) {
  uint32_t prefix = 0, prefix_mask = 0;
  int top = 32;  // bits above this one are decided
  if (kBits < kRadixBits) {
    // Short lists: the leading bits every key >= lo shares are decided without a histogram.
    // Those passes would put every element in one bin, a chain of dependent increments.
    const KeyRange range = key_range_at_least(ctx, view, lo, map);
    if (range.min == range.max) return range.min;  // one distinct key holds all the weight
    top = 32 - leading_zeros(range.min ^ range.max);
    prefix_mask = top == 32 ? 0u : ~0u << top;
    prefix = range.min & prefix_mask;
  }
  for (int shift = top - kBits; shift > -kBits && passes > 0; shift -= kBits, --passes) {
    const int s = shift < 0 ? 0 : shift;
    const int bits = shift < 0 ? kBits + shift : kBits;
    const uint32_t digit_mask = (1u << bits) - 1u;
    uint64_t* local = ctx.hist_begin(1 << kBits);
    ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
      for (int j = 0; j < n; ++j) {
        const uint32_t key = map(keys[j]);
        // Branch-free: whether a key still matches is data-dependent and mispredicts.
        const bool in = keys[j] >= lo && (key & prefix_mask) == prefix;
        ctx.hist_add(local, int((key >> s) & digit_mask), in ? weight(keys[j]) : 0);
      }
    });
    const uint64_t* hist = ctx.hist_end(local, 1 << kBits);
    uint64_t above = 0;
    int digit = int(digit_mask);
    for (; digit > 0; --digit) {
      if (above + hist[digit] >= need) break;
      above += hist[digit];
    }
    need -= above;
    prefix |= uint32_t(digit) << s;
    prefix_mask |= digit_mask << s;
    if (s == 0) break;
  }
  return prefix;
}

// Lists up to this long select with 8-bit digits.
constexpr int64_t kShortList = 4096;

// radix_select_desc with the digit width that suits the view's length (the same choice on every
// worker: the length is).
template <class Ctx, class View, class Weight, class Map = SameKey>
FS_HOST_DEVICE uint32_t radix_select_any(Ctx& ctx, const View& view, uint32_t lo, uint64_t need,
                                         const Weight& weight, const Map& map = Map{}) {
  return view.size() <= kShortList ? radix_select_desc<8>(ctx, view, lo, need, weight, 4, map)
                                   : radix_select_desc(ctx, view, lo, need, weight, 4, map);
}

struct CountWeight {
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(uint32_t) const { return 1; }
};

// Counts the keys up to max_key only: selection within a band of keys.
struct CountAtMost {
  uint32_t max_key;
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(uint32_t key) const {
    return key <= max_key ? 1 : 0;
  }
};


FS_CODE_END
}  // namespace fastsample
