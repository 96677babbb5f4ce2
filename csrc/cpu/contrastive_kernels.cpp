// The CPU contrastive-search scoring kernel (fastsample/contrastive.h): rows handed out to the
// pool's workers, one row per worker at a time. Compiled once per instruction-set level, like
// batch_kernels.cpp (the 32-lane dot products vectorize).
#include <atomic>

#include "cpu_backend.h"
#include "fastsample/contrastive.h"
#include "thread_pool.h"

#ifndef FS_CPU_ISA
#error "FS_CPU_ISA must name the instruction-set namespace"
#endif

namespace fastsample::cpu::FS_CPU_ISA {
namespace {

// Rows with less work than this (multiply-adds) in all run on the calling thread.
constexpr int64_t kParallelMinWork = int64_t(1) << 18;

template <DType D>
void score_row(const ContrastiveArgs& a, int64_t row) {
  float norms[kMaxContrastiveCandidates];
  uint32_t max_keys[kMaxContrastiveCandidates];
  for (int64_t j = 0; j < a.k; ++j) {
    const auto* c = candidate_vector<D>(a, row, j);
    norms[j] = std::sqrt(fixed_dot<D>(c, c, a.dim));
    max_keys[j] = 0;
  }
  for (int64_t s = 0; s < a.length; ++s) {
    if (!position_counts(a, row, s)) continue;
    const auto* h = context_vector<D>(a, row, s);
    const float norm = std::sqrt(fixed_dot<D>(h, h, a.dim));
    for (int64_t j = 0; j < a.k; ++j) {
      const uint32_t key = cosine_key(fixed_dot<D>(h, candidate_vector<D>(a, row, j), a.dim),
                                      norm, norms[j]);
      max_keys[j] = key > max_keys[j] ? key : max_keys[j];
    }
  }
  for (int64_t j = 0; j < a.k; ++j) store_contrastive_score(a, row, j, max_keys[j]);
}

void score_row_any_dtype(const ContrastiveArgs& a, int64_t row) {
  switch (a.dtype) {
    case DType::kFloat16: return score_row<DType::kFloat16>(a, row);
    case DType::kBFloat16: return score_row<DType::kBFloat16>(a, row);
    default: return score_row<DType::kFloat32>(a, row);
  }
}

}  // namespace

void contrastive_batch(const ContrastiveArgs& a) {
  ThreadPool::Lease pool(ThreadPool::instance());
  const int64_t work = a.batch * (a.length + 1) * (a.k + 1) * a.dim;
  int workers = work < kParallelMinWork ? 1 : pool.threads();
  if (int64_t(workers) > a.batch) workers = int(a.batch < 1 ? 1 : a.batch);
  std::atomic<int64_t> next{0};
  pool.run(workers, [&](int, int) {
    for (int64_t row = next++; row < a.batch; row = next++) score_row_any_dtype(a, row);
  }, ThreadPool::Workers::kOptional);
}

}  // namespace fastsample::cpu::FS_CPU_ISA
