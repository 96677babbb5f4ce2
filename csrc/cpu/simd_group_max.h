// The float maximum of one group of kGroup logits, NaN ignored, in the widest SIMD this
// instruction-set level has. It lets the first pass over a row run at the speed of reading it:
// no key decode per element, one max instruction per vector.
#pragma once
#include <cstdint>
#include <cstring>

#include "fastsample/common.h"
#include "fastsample/float_key.h"

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace fastsample::cpu {
FS_CODE_BEGIN

#if defined(__AVX2__) && defined(__F16C__)
// max(x, acc) returns acc when x is NaN, so NaN never wins (it sanitizes to -inf).
FS_INLINE __m256 max_keep(__m256 x, __m256 acc) { return _mm256_max_ps(x, acc); }
FS_INLINE float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ps(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
template <DType D>
FS_INLINE __m256 load8(const void* p) {
  if constexpr (D == DType::kFloat32) {
    return _mm256_loadu_ps(static_cast<const float*>(p));
  } else if constexpr (D == DType::kFloat16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  } else {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}
template <DType D, class Elem>
FS_INLINE float group_max_float(const Elem* p) {
  static_assert(kGroup % 32 == 0, "four vectors of eight per step");
  __m256 a0 = _mm256_set1_ps(-__builtin_inff()), a1 = a0, a2 = a0, a3 = a0;
  for (int j = 0; j < kGroup; j += 32) {
    a0 = max_keep(load8<D>(p + j), a0);
    a1 = max_keep(load8<D>(p + j + 8), a1);
    a2 = max_keep(load8<D>(p + j + 16), a2);
    a3 = max_keep(load8<D>(p + j + 24), a3);
  }
  return hmax(_mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(a2, a3)));
}
constexpr bool kSimdGroupMax = true;
#else
template <DType D, class Elem>
FS_INLINE float group_max_float(const Elem*) { return 0.0f; }
constexpr bool kSimdGroupMax = false;
#endif

// Sanitized max key of one full group; exact (the key the per-element decode would give).
template <DType D>
FS_INLINE uint32_t group_max_key(const typename KeyLoader<D>::Elem* p) {
  if constexpr (kSimdGroupMax) {
    // NaN never wins the float max and sanitizes below everything, so sanitizing the max is
    // the max of the sanitized keys.
    return sanitized_key(float_bits(group_max_float<D>(p)));
  }
  uint32_t best = 0;
  for (int j = 0; j < kGroup; ++j) {
    const uint32_t k = KeyLoader<D>::key(p[j]);
    best = k > best ? k : best;
  }
  return best;
}

FS_CODE_END
}  // namespace fastsample::cpu
