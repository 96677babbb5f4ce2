// Per-chunk loops the row algorithms share, written so that compilers vectorize them.
#pragma once
#include "fastsample/fexp.h"
#include "fastsample/temperature.h"

namespace fastsample {
FS_CODE_BEGIN

// First position of `key` in the chunk (the caller knows it is there).
FS_HOST_DEVICE FS_INLINE int chunk_find(const uint32_t* keys, int n, uint32_t key) {
  for (int j = 0; j < n; ++j) {
    if (keys[j] == key) return j;
  }
  return 0;
}

FS_HOST_DEVICE FS_INLINE uint64_t chunk_count_at_least(const uint32_t* keys, int n, uint32_t lo) {
  uint32_t c = 0;
  for (int j = 0; j < n; ++j) c += keys[j] >= lo ? 1u : 0u;
  return c;
}

FS_HOST_DEVICE FS_INLINE uint32_t chunk_max(const uint32_t* keys, int n) {
  uint32_t m = 0;
  for (int j = 0; j < n; ++j) m = keys[j] > m ? keys[j] : m;
  return m;
}

// No upper end: the keep-set of every filter but XTC reaches the row's maximum.
constexpr uint32_t kNoUpperKey = 0xFFFFFFFFu;

// d = z_ref - z for every key of the chunk in [lo, hi] (elements outside, and -inf, get +inf:
// zero mass). z_ref: the largest z the band holds.
FS_HOST_DEVICE FS_INLINE void chunk_distance(const uint32_t* keys, int n, uint32_t lo, uint32_t hi,
                                             const Temperature& temp, float z_ref, float* d) {
  const float inf = bits_float(0x7f800000u);
  const uint32_t floor = lo > kNegInfKey ? lo : kNegInfKey + 1;  // so every z read is finite
  if (z_ref > -bits_float(kFloatMaxBits)) {
    // A z that overflowed below lies at least the float spacing near FLT_MAX (2e31) under
    // z_ref, clamped or not: its mass is 0 and it lands in the histogram's tail either way, so
    // this loop (every row but one of ties at the lowest float) skips the clamp below.
    for (int j = 0; j < n; ++j) {
      const float dj = z_ref - temp.z_clamped_above(key_to_float(keys[j]));
      d[j] = keys[j] >= floor && keys[j] <= hi ? dj : inf;
    }
    return;
  }
  for (int j = 0; j < n; ++j) {
    const float dj = z_ref - temp.z_of_finite_key(keys[j]);
    d[j] = keys[j] >= floor && keys[j] <= hi ? dj : inf;
  }
}

// Fixed-point masses ceil(exp(-d) * 2^38) of a chunk (mass_fixed), held as floats: each is an
// integer below 2^39, exact in float (below 2^24 it is one, above it every float is integral).
// A loop of its own: fused with chunk_distance's, the two run slower.
FS_HOST_DEVICE FS_INLINE void chunk_mass(const float* d, int n, float* m) {
  for (int j = 0; j < n; ++j) m[j] = ceilf(exp_nonpositive(-d[j]) * 274877906944.0f);  // 2^38
}

// Sum of a chunk's masses. Each is an integer <= 2^38, so any partial sum of a chunk stays below
// 2^53 and is exact in double in any order: eight running sums let the loop vectorize.
FS_HOST_DEVICE FS_INLINE uint64_t chunk_mass_sum(const float* m, int n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += double(m[j + l]);
  }
  for (; j < n; ++j) acc[0] += double(m[j]);
  double s = 0;
  for (int l = 0; l < 8; ++l) s += acc[l];
  return uint64_t(int64_t(s));
}
// Through int64: a float-to-unsigned conversion costs a branch for values no mass reaches.
FS_HOST_DEVICE FS_INLINE uint64_t mass_of(float m) { return uint64_t(int64_t(m)); }

FS_CODE_END
}  // namespace fastsample
