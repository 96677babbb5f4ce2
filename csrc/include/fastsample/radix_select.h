// Threshold search by radix select over keys (DESIGN.md, choice 3): no sort of the vocabulary.
#pragma once
#include "fastsample/common.h"
#include "fastsample/exec_context.h"

namespace fastsample {
FS_CODE_BEGIN

// Largest key t with weight(key >= t) >= need, over elements with key >= lo.
// Weight is a per-element functor returning uint64 (1 for top-k counts, a fixed-point mass for
// top-p). Three passes of 11, 11 and 10 bits. Precondition: the total weight is >= need >= 1.
// With passes < 3 it stops early and returns a lower bound on that key: its leading digits.
template <class Ctx, class View, class Weight>
FS_HOST_DEVICE uint32_t radix_select_desc(Ctx& ctx, const View& view, uint32_t lo, uint64_t need,
                                          const Weight& weight, int passes = 3) {
  uint32_t prefix = 0, prefix_mask = 0;
  for (int shift = 32 - kRadixBits; shift >= -1 && passes > 0; shift -= kRadixBits, --passes) {
    const int s = shift < 0 ? 0 : shift;
    const int bits = shift < 0 ? kRadixBits + shift : kRadixBits;
    const uint32_t digit_mask = (1u << bits) - 1u;
    uint64_t* local = ctx.hist_begin(kRadixBins);
    ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
      for (int j = 0; j < n; ++j) {
        const uint32_t key = keys[j];
        // Branch-free: whether a key still matches is data-dependent and mispredicts.
        const bool in = key >= lo && (key & prefix_mask) == prefix;
        ctx.hist_add(local, int((key >> s) & digit_mask), in ? weight(key) : 0);
      }
    });
    const uint64_t* hist = ctx.hist_end(local, kRadixBins);
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

struct CountWeight {
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(uint32_t) const { return 1; }
};

FS_CODE_END
}  // namespace fastsample
