// exp(a) for a <= 0, the one implementation every backend uses for probability masses.
// Written with explicit fma and no library calls so CPU (any SIMD level) and GPU agree bit for bit.
#pragma once
#include <cmath>
#include "fastsample/float_key.h"

namespace fastsample {
FS_CODE_BEGIN

FS_HOST_DEVICE FS_INLINE float exp_nonpositive(float a) {
  // Below this the result is under 2^-126: flushed to 0, far below the 2^-38 mass resolution.
  const bool tiny = !(a > -87.0f);
  a = tiny ? 0.0f : a;
  // n = round(a / ln2): adding 1.5 * 2^23 rounds a * log2(e) to an integer in the low bits,
  // which then hold n + 127, the exponent field of 2^n (no float-to-int conversion).
  const float shifted = fmaf(a, 1.44269504088896341f, 12582912.0f + 127.0f);
  const float n = shifted - (12582912.0f + 127.0f);
  float r = fmaf(n, -0.693145751953125f, a);   // ln2 split in two for an exact reduction
  r = fmaf(n, -1.428606765330187e-06f, r);
  float p = 1.98412698e-4f;                     // Taylor coefficients 1/7! ... 1/0!
  p = fmaf(p, r, 1.38888889e-3f);
  p = fmaf(p, r, 8.33333333e-3f);
  p = fmaf(p, r, 4.16666667e-2f);
  p = fmaf(p, r, 1.66666667e-1f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  const float result = p * bits_float(float_bits(shifted) << 23);
  return tiny ? 0.0f : result;
}

// Fixed-point mass of a token at distance d = z_max - z >= 0 from the row's maximum. Any token
// with a positive float mass gets at least one unit, so no kept token becomes unsampleable.
FS_HOST_DEVICE FS_INLINE uint64_t mass_fixed_from_float(float w) {
  const float scaled = w * float(uint64_t(1) << kMassFracBits);   // exact: power-of-two scale
  const uint64_t m = uint64_t(scaled);
  return m + ((float(m) < scaled) ? 1u : 0u);
}
FS_HOST_DEVICE FS_INLINE uint64_t mass_fixed(float d) {
  return mass_fixed_from_float(exp_nonpositive(-d));
}

FS_CODE_END
}  // namespace fastsample
