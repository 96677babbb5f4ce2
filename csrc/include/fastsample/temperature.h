// Stage 4: z = x / T (float32 division, clamped to the largest finite float), and its inverse on
// keys, so selection can run on the raw logits' keys and still give the keep-set defined on z.
#pragma once
#include "fastsample/float_key.h"

namespace fastsample {
FS_CODE_BEGIN

struct Temperature {
  float t;        // > 0 here: greedy rows never reach the filters
  bool identity;  // t == 1: z == x exactly

  FS_HOST_DEVICE explicit Temperature(float temp) : t(temp), identity(temp == 1.0f) {}

  // z of a finite x. A small T can overflow a finite logit to +-inf: z stays in the finite
  // range, like stage 0, so a row whose every z would be -inf keeps its finite logits (tied at
  // the lowest float) instead of losing its mass. No shortcut for t == 1: x / 1 == x exactly,
  // and the body (a division, a min and a max) vectorizes.
  FS_HOST_DEVICE FS_INLINE float z_finite(float x) const {
    const float max = bits_float(kFloatMaxBits);
    const float q = x / t;
    const float below = q > max ? max : q;
    return below < -max ? -max : below;
  }
  // z of any sanitized x: -inf (a masked token) stays -inf. Loops over keys that exclude -inf
  // use z_of_finite_key: the test on x costs a compare and a blend per element there.
  FS_HOST_DEVICE FS_INLINE float z(float x) const {
    return x < -bits_float(kFloatMaxBits) ? x : z_finite(x);
  }
  // x / T clamped above only: z where no overflow below can matter (chunk_distance).
  FS_HOST_DEVICE FS_INLINE float z_clamped_above(float x) const {
    const float q = x / t;
    return q > bits_float(kFloatMaxBits) ? bits_float(kFloatMaxBits) : q;
  }
  FS_HOST_DEVICE FS_INLINE float z_of_key(uint32_t key) const { return z(key_to_float(key)); }
  FS_HOST_DEVICE FS_INLINE float z_of_finite_key(uint32_t key) const {
    return z_finite(key_to_float(key));
  }

  // Smallest key whose z is >= zt: z is monotone in x, so {z >= zt} == {key >= this}. Rounding can
  // give several x the same z; this reaches down to the lowest of them, keeping ties on z exact.
  FS_HOST_DEVICE uint32_t min_key_with_z_at_least(float zt) const {
    if (identity) return float_to_key(zt);
    uint32_t lo = kNegInfKey, hi = kFloatMaxKey;
    if (z_of_key(lo) >= zt) return lo;
    // Invariant: z(lo) < zt <= z(hi).
    while (hi - lo > 1) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (z_of_key(mid) >= zt) hi = mid; else lo = mid;
    }
    return hi;
  }
  // Largest key whose z is <= zt, zt the z of a finite key: the upper end of the keys tied with
  // it on z (rounding can give several x the same z).
  FS_HOST_DEVICE uint32_t max_key_with_z_at_most(float zt) const {
    if (!(z_of_key(kFloatMaxKey) > zt)) return kFloatMaxKey;
    return min_key_with_z_at_least(key_to_float(float_to_key(zt) + 1)) - 1;
  }
};

FS_CODE_END
}  // namespace fastsample
