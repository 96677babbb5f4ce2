// Positions j < n with values[j] < bound, in order: a left-pack eight at a time where AVX2 is
// compiled in. The top-p histogram pass lists the few elements of a chunk that land above its
// tail bin; a scalar loop (a compare, a store and an add per element) cost as much as adding
// every element to the histogram.
#pragma once
#include <cstdint>

#include "fastsample/common.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace fastsample::cpu {
FS_CODE_BEGIN

#if defined(__AVX2__)
// For each 8-bit lane mask, the set lanes' indices packed low, four bits each.
struct LeftPackTable {
  uint32_t packed[256];
  constexpr LeftPackTable() : packed() {
    for (int mask = 0; mask < 256; ++mask) {
      uint32_t p = 0;
      int out = 0;
      for (int lane = 0; lane < 8; ++lane) {
        if (mask & (1 << lane)) p |= uint32_t(lane) << (4 * out++);
      }
      packed[mask] = p;
    }
  }
};
inline constexpr LeftPackTable kLeftPack{};
#endif

// `listed` must have room for n + 8 entries: whole vectors are stored past the count.
FS_INLINE int list_below(const float* values, int n, float bound, int* listed) {
  int count = 0;
  int j = 0;
#if defined(__AVX2__)
  const __m256 bound_v = _mm256_set1_ps(bound);
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i nibble = _mm256_set1_epi32(0xf);
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(values + j);
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, bound_v, _CMP_LT_OQ));
    const __m256i lanes = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(int(kLeftPack.packed[mask])), shifts), nibble);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(listed + count),
                        _mm256_add_epi32(lanes, _mm256_set1_epi32(j)));
    count += __builtin_popcount(unsigned(mask));
  }
#endif
  for (; j < n; ++j) {
    listed[count] = j;
    count += values[j] < bound ? 1 : 0;
  }
  return count;
}

FS_CODE_END
}  // namespace fastsample::cpu
