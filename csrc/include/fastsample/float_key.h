// Stage 0 (sanitize) and the order-preserving integer image of float keys.
//
// Every comparison in the selection code is done on uint32 keys: key(a) < key(b) <=> a < b for
// all non-NaN floats, and integer compares vectorize without NaN semantics getting in the way.
#pragma once
#include <cstring>
#include "fastsample/common.h"

namespace fastsample {
FS_CODE_BEGIN

constexpr uint32_t kFloatMaxBits = 0x7f7fffffu;     // largest finite float
constexpr uint32_t kNegInfBits = 0xff800000u;

FS_HOST_DEVICE FS_INLINE uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof(u));
  return u;
}
FS_HOST_DEVICE FS_INLINE float bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof(f));
  return f;
}

// Order-preserving map float bits -> uint32 (negative floats reversed, positives above them).
FS_HOST_DEVICE FS_INLINE uint32_t bits_to_key(uint32_t u) {
  const uint32_t mask = uint32_t(int32_t(u) >> 31) | 0x80000000u;
  return u ^ mask;
}
FS_HOST_DEVICE FS_INLINE uint32_t key_to_bits(uint32_t k) {
  const uint32_t mask = (k >> 31) ? 0x80000000u : 0xffffffffu;
  return k ^ mask;
}
FS_HOST_DEVICE FS_INLINE uint32_t float_to_key(float f) { return bits_to_key(float_bits(f)); }
FS_HOST_DEVICE FS_INLINE float key_to_float(uint32_t k) { return bits_float(key_to_bits(k)); }

constexpr uint32_t kNegInfKey = 0x007fffffu;        // bits_to_key(kNegInfBits)
constexpr uint32_t kFloatMaxKey = 0xff7fffffu;      // bits_to_key(kFloatMaxBits)

// Smallest key in [lo, hi] where pred holds, for a pred monotone over keys (false below some
// key, true from it on); hi + 1 when it holds nowhere in the range. Every threshold on z, on a
// mass or on a distance becomes a key this way: at most 32 evaluations, no pass over a row.
template <class Pred>
FS_HOST_DEVICE FS_INLINE uint32_t first_key_where(uint32_t lo, uint32_t hi, const Pred& pred) {
  if (pred(lo)) return lo;
  if (!pred(hi)) return hi + 1;
  // Invariant: !pred(lo), pred(hi).
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (pred(mid)) hi = mid; else lo = mid;
  }
  return hi;
}

// The key of sanitized float bits (SEMANTICS stage 0): NaN -> -inf (never sampled), +inf ->
// the largest finite float, -0 -> +0 (they compare equal as floats, so they must tie as keys:
// argmax takes the first). Mostly done on the key: after the map, every NaN but the positive
// ones lies below -inf's key, +inf's key is one above the largest finite's, and -0's one below
// +0's. One signed compare, an unsigned max and two equality tests, each a single SIMD
// instruction: the decode loops of every pass compile to straight vector code.
FS_HOST_DEVICE FS_INLINE uint32_t sanitized_key(uint32_t u) {
  u |= 0u - uint32_t(int32_t(u) > int32_t(0x7f800000));  // positive NaN -> a negative one
  uint32_t k = bits_to_key(u);
  k = k > kNegInfKey ? k : kNegInfKey;                    // NaN -> -inf
  k += 0u - uint32_t(k == 0xff800000u);                   // +inf -> largest finite
  k -= 0u - uint32_t(k == 0x7fffffffu);                   // -0 -> +0
  return k;
}

// float16 / bfloat16 -> float32 are exact; these bit forms give the same result on every backend.
FS_HOST_DEVICE FS_INLINE uint32_t half_to_float_bits(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = h & 0x7c00u;
  const uint32_t mant = h & 0x03ffu;
  // Normal numbers: rebias the exponent. Subnormals: scale the mantissa as a float (exact).
  const uint32_t normal = ((uint32_t(h & 0x7fffu) << 13) + (uint32_t(127 - 15) << 23));
  const uint32_t infnan = 0x7f800000u | (mant << 13);
  const uint32_t sub = float_bits(float(mant) * 5.9604644775390625e-08f);  // mant * 2^-24
  const uint32_t mag = exp == 0x7c00u ? infnan : (exp == 0 ? sub : normal);
  return sign | mag;
}
FS_HOST_DEVICE FS_INLINE uint32_t bf16_to_float_bits(uint16_t h) { return uint32_t(h) << 16; }

// Sanitized key of element i of a row, for each logits dtype.
template <DType D>
struct KeyLoader;

template <>
struct KeyLoader<DType::kFloat32> {
  using Elem = uint32_t;
  FS_HOST_DEVICE FS_INLINE static uint32_t key(Elem e) { return sanitized_key(e); }
};
template <>
struct KeyLoader<DType::kFloat16> {
  using Elem = uint16_t;
  FS_HOST_DEVICE FS_INLINE static uint32_t key(Elem e) {
    return sanitized_key(half_to_float_bits(e));
  }
};
template <>
struct KeyLoader<DType::kBFloat16> {
  using Elem = uint16_t;
  FS_HOST_DEVICE FS_INLINE static uint32_t key(Elem e) {
    return sanitized_key(bf16_to_float_bits(e));
  }
};

FS_CODE_END
}  // namespace fastsample
