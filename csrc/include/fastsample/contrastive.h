// Contrastive search's ranking of a step's candidates (Su et al. 2022, as transformers 4.x
// scored them): candidate j of row b scores
//   (1 - alpha_b) p_bj - alpha_b max_s cos(context_bs, candidate_bj)
// over the context positions s its mask counts; a candidate with p <= 0 (one the row does not
// keep) scores -inf.
//
// Every backend computes a dot product of two hidden states the same way: 32 lanes, lane l
// summing the products of elements l, l + 32, l + 64, ... in order, then the lanes added
// pairwise by halving (lane l + lane l + w for w = 16, 8, 4, 2, 1), which is what a warp's
// butterfly of shuffles leaves in lane 0. A cosine is dot / (|a| |b|) with IEEE square roots
// and one division, and each candidate's maximum is kept as an order-preserving key (an exact,
// associative max). So the scores do not depend on how positions are split between threads,
// and the CPU and CUDA kernels agree bit for bit (nvcc --fmad=false, -ffp-contract=off).
#pragma once
#include <cfloat>
#include <cmath>

#include "fastsample/float_key.h"

namespace fastsample {

constexpr int kMaxContrastiveCandidates = 64;  // k per row (transformers' default top_k is 50)
constexpr int kDotLanes = 32;

// One call: B rows, L context positions, k candidates, hidden size D. Element strides; the
// hidden dimension is contiguous. Weights are float32 as transformers' Python floats reach
// its float32 math: keep = 1 - alpha, penalty = alpha.
struct ContrastiveArgs {
  const void* context = nullptr;     // [B, L, D], in dtype
  const void* candidates = nullptr;  // [B, k, D], in dtype
  const uint8_t* mask = nullptr;     // [B, L], nonzero where the position counts; contiguous
  const float* probs = nullptr;      // [B, k], contiguous
  const float* keep_weight = nullptr;     // [B]
  const float* penalty_weight = nullptr;  // [B]
  float* out_scores = nullptr;       // [B, k], contiguous
  int64_t batch = 0, length = 0, k = 0, dim = 0;
  int64_t context_row_stride = 0, context_pos_stride = 0;
  int64_t candidate_row_stride = 0, candidate_stride = 0;
  DType dtype = DType::kFloat32;
};

FS_CODE_BEGIN

// Element i of a hidden-state vector as a float (exact for every dtype).
template <DType D>
FS_HOST_DEVICE FS_INLINE float hidden_at(const typename KeyLoader<D>::Elem* v, int64_t i) {
  if constexpr (D == DType::kFloat32) {
    return bits_float(v[i]);
  } else if constexpr (D == DType::kFloat16) {
    return bits_float(half_to_float_bits(v[i]));
  } else {
    return bits_float(bf16_to_float_bits(v[i]));
  }
}

// Lane `lane`'s part of a . b over n elements: elements lane, lane + 32, ... in order.
template <DType D>
FS_HOST_DEVICE FS_INLINE float lane_dot(const typename KeyLoader<D>::Elem* a,
                                        const typename KeyLoader<D>::Elem* b, int64_t n,
                                        int lane) {
  float sum = 0.0f;
  for (int64_t i = lane; i < n; i += kDotLanes) sum += hidden_at<D>(a, i) * hidden_at<D>(b, i);
  return sum;
}

// The lanes' parts added pairwise by halving; lanes[0] ends with the dot product.
FS_HOST_DEVICE FS_INLINE float halving_sum(float* lanes) {
  for (int w = kDotLanes / 2; w > 0; w /= 2) {
    for (int l = 0; l < w; ++l) lanes[l] = lanes[l] + lanes[l + w];
  }
  return lanes[0];
}

// a . b on one worker (the CPU's form of what a warp computes with its lanes).
template <DType D>
FS_HOST_DEVICE float fixed_dot(const typename KeyLoader<D>::Elem* a,
                               const typename KeyLoader<D>::Elem* b, int64_t n) {
  float lanes[kDotLanes];
  for (int l = 0; l < kDotLanes; ++l) lanes[l] = 0.0f;
  for (int64_t base = 0; base < n; base += kDotLanes) {
    const int64_t here = n - base < kDotLanes ? n - base : kDotLanes;
    for (int64_t l = 0; l < here; ++l) {
      lanes[l] += hidden_at<D>(a, base + l) * hidden_at<D>(b, base + l);
    }
  }
  return halving_sum(lanes);
}

template <DType D>
FS_HOST_DEVICE FS_INLINE const typename KeyLoader<D>::Elem* context_vector(
    const ContrastiveArgs& a, int64_t row, int64_t s) {
  return static_cast<const typename KeyLoader<D>::Elem*>(a.context) + row * a.context_row_stride +
         s * a.context_pos_stride;
}

template <DType D>
FS_HOST_DEVICE FS_INLINE const typename KeyLoader<D>::Elem* candidate_vector(
    const ContrastiveArgs& a, int64_t row, int64_t j) {
  return static_cast<const typename KeyLoader<D>::Elem*>(a.candidates) +
         row * a.candidate_row_stride + j * a.candidate_stride;
}

// The key of cos = dot / (|a| |b|); keys order as the floats do and are never 0 for a cosine.
// A cosine that is not finite counts as 1, the most similar: a zero vector's (0 / 0), or one
// whose squares underflow while its products do not (x / 0). NaNs differ between backends and
// would sort differently; an infinite cosine would make a score NaN or +inf.
FS_HOST_DEVICE FS_INLINE uint32_t cosine_key(float dot, float norm_a, float norm_b) {
  const float cos = dot / (norm_a * norm_b);
  return float_to_key(fabsf(cos) <= FLT_MAX ? cos : 1.0f);
}

FS_HOST_DEVICE FS_INLINE bool position_counts(const ContrastiveArgs& a, int64_t row, int64_t s) {
  return a.mask[row * a.length + s] != 0;
}

// Candidate j's score from its largest cosine's key (0: no position counted, as transformers'
// mask makes every cosine the float minimum).
FS_HOST_DEVICE FS_INLINE void store_contrastive_score(const ContrastiveArgs& a, int64_t row,
                                                      int64_t j, uint32_t max_key) {
  const float p = a.probs[row * a.k + j];
  const float penalty = max_key == 0 ? -FLT_MAX : key_to_float(max_key);
  const float keep = a.keep_weight[row] * p;
  const float push = a.penalty_weight[row] * penalty;
  a.out_scores[row * a.k + j] = p > 0.0f ? keep - push : -INFINITY;
}

FS_CODE_END
}  // namespace fastsample
