// The CUDA body of the contrastive-search scoring kernel (fastsample/contrastive.h): one block
// per row (blocks loop over rows), one warp per context position at a time. Lane l of a warp
// sums the products of elements l, l + 32, ... of the two vectors (coalesced loads) and the
// warp's butterfly adds the lanes in the order the CPU kernel's halving_sum does, so the scores
// equal the CPU's bit for bit. Each candidate's largest cosine is an atomicMax of its key in
// shared memory. Used by the real kernel (contrastive_kernels.cu) and by the host emulation.
#pragma once
#include "fastsample/contrastive.h"

namespace fastsample::cuda {

constexpr int kContrastiveThreads = 256;
constexpr int kContrastiveWarps = kContrastiveThreads / 32;

// Shared storage of one block: each candidate's norm and largest cosine's key.
struct ContrastiveShared {
  float norms[kMaxContrastiveCandidates];
  uint32_t max_keys[kMaxContrastiveCandidates];
};

// a . b over the warp (every lane gets the sum of lane_dot's parts, added as halving_sum does:
// lane l + lane l ^ w is lane l + lane l + w for the lanes below w).
template <DType D>
__device__ __forceinline__ float warp_dot(const typename KeyLoader<D>::Elem* a,
                                          const typename KeyLoader<D>::Elem* b, int64_t n,
                                          int lane) {
  float sum = lane_dot<D>(a, b, n, lane);
  for (int w = kDotLanes / 2; w > 0; w /= 2) sum = sum + __shfl_xor_sync(0xffffffffu, sum, w);
  return sum;
}

template <DType D>
__device__ void contrastive_block(const ContrastiveArgs& a, ContrastiveShared* sh) {
  const int lane = int(threadIdx.x % 32);
  const int warp = int(threadIdx.x / 32);
  for (int64_t row = blockIdx.x; row < a.batch; row += gridDim.x) {
    for (int64_t j = warp; j < a.k; j += kContrastiveWarps) {
      const auto* c = candidate_vector<D>(a, row, j);
      const float dot = warp_dot<D>(c, c, a.dim, lane);
      if (lane == 0) {
        sh->norms[j] = sqrtf(dot);
        sh->max_keys[j] = 0;
      }
    }
    __syncthreads();
    for (int64_t s = warp; s < a.length; s += kContrastiveWarps) {
      if (!position_counts(a, row, s)) continue;  // the same for every lane of the warp
      const auto* h = context_vector<D>(a, row, s);
      const float norm = sqrtf(warp_dot<D>(h, h, a.dim, lane));
      for (int64_t j = 0; j < a.k; ++j) {
        const float dot = warp_dot<D>(h, candidate_vector<D>(a, row, j), a.dim, lane);
        if (lane == 0) atomicMax(&sh->max_keys[j], cosine_key(dot, norm, sh->norms[j]));
      }
    }
    __syncthreads();
    for (int64_t j = threadIdx.x; j < a.k; j += kContrastiveThreads) {
      store_contrastive_score(a, row, j, sh->max_keys[j]);
    }
    __syncthreads();  // the next row overwrites the shared storage
  }
}

}  // namespace fastsample::cuda
