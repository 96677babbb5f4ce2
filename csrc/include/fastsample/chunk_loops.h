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

// d = z_max - z for every key of the chunk (elements below lo get +inf: zero mass).
FS_HOST_DEVICE FS_INLINE void chunk_distance(const uint32_t* keys, int n, uint32_t lo,
                                             const Temperature& temp, float z_max, float* d) {
  const float inf = bits_float(0x7f800000u);
  for (int j = 0; j < n; ++j) {
    const float dj = z_max - temp.z_of_key(keys[j]);
    d[j] = keys[j] >= lo ? dj : inf;
  }
}

// Float masses exp(-d) of a chunk; the integer conversion (mass_fixed_from_float) stays scalar.
FS_HOST_DEVICE FS_INLINE void chunk_mass_float(const float* d, int n, float* w) {
  for (int j = 0; j < n; ++j) w[j] = exp_nonpositive(-d[j]);
}

// Fixed-point masses of a chunk (mass_fixed_from_float), split as m = hi * 2^19 + lo so that
// every step is a float or int32 operation and the loop vectorizes. ceil(w * 2^38) is exact in
// float (an integer below 2^24, or a float already integral above it), and so are the split's
// floor, product and difference.
FS_HOST_DEVICE FS_INLINE void chunk_mass_split(const float* w, int n, uint32_t* hi, uint32_t* lo) {
  for (int j = 0; j < n; ++j) {
    const float m = ceilf(w[j] * 274877906944.0f);        // 2^38
    const float h = floorf(m * 1.9073486328125e-06f);     // 2^-19
    hi[j] = uint32_t(int32_t(h));
    lo[j] = uint32_t(int32_t(m - h * 524288.0f));         // 2^19
  }
}
FS_HOST_DEVICE FS_INLINE uint64_t mass_join(uint32_t hi, uint32_t lo) {
  return (uint64_t(hi) << 19) + lo;
}
// Sum of a chunk's split masses; per-chunk int32 sums cannot overflow (kChunk * 2^19 < 2^32).
FS_HOST_DEVICE FS_INLINE uint64_t chunk_mass_sum(const uint32_t* hi, const uint32_t* lo, int n) {
  uint32_t sh = 0, sl = 0;
  for (int j = 0; j < n; ++j) {
    sh += hi[j];
    sl += lo[j];
  }
  return mass_join(sh, 0) + sl;
}

// mass_bin of every distance of a chunk (d = +inf lands in the tail bin).
FS_HOST_DEVICE FS_INLINE void chunk_mass_bins(const float* d, int n, int tail, int* bins) {
  const float tail_scaled = float(tail);
  for (int j = 0; j < n; ++j) {
    const float scaled = d[j] * float(kMassBinsPerUnit);
    bins[j] = scaled < tail_scaled ? int(scaled) : tail;
  }
}


FS_CODE_END
}  // namespace fastsample
