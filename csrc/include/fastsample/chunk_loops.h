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

FS_CODE_END
}  // namespace fastsample
