// A batch call as every backend receives it, and how a row's parameters and logits are read
// from it. Pointers are host memory for the CPU backend and device memory for CUDA.
#pragma once
#include "fastsample/row_params.h"
#include "fastsample/views.h"

namespace fastsample {

// Outside the per-instruction-set namespaces: one type that every backend object agrees on.
struct BatchArgs {
  const void* logits = nullptr;
  DType dtype = DType::kFloat32;
  int64_t batch = 0, vocab = 0, row_stride = 0;  // row_stride in elements
  ParamSource<float> temperature{1.0f, nullptr};
  ParamSource<int64_t> top_k{0, nullptr};
  ParamSource<float> top_p{1.0f, nullptr};
  ParamSource<float> min_p{0.0f, nullptr};
  ParamSource<int64_t> seed{0, nullptr};
  ParamSource<int64_t> offset{0, nullptr};
  int64_t* out_tokens = nullptr;  // sample: [batch]; may alias seed.ptr (read before written)
  uint8_t* out_valid = nullptr;   // sample: [batch], optional
  float* out_logits = nullptr;    // process: [batch, out_row_stride]
  int64_t out_row_stride = 0;
  int num_threads = 0;            // CPU only; 0: the pool's size
};

FS_CODE_BEGIN

FS_HOST_DEVICE inline RowParams batch_row_params(const BatchArgs& a, int64_t row) {
  RowParams p;
  p.temperature = a.temperature.at(row);
  p.top_k = a.top_k.at(row);
  p.top_p = a.top_p.at(row);
  p.min_p = a.min_p.at(row);
  p.seed = uint64_t(a.seed.at(row));
  p.offset = uint64_t(a.offset.at(row));
  return normalize_params(p, a.vocab);
}

template <DType D>
FS_HOST_DEVICE inline RowView<D> batch_row_view(const BatchArgs& a, int64_t row) {
  using Elem = typename KeyLoader<D>::Elem;
  return RowView<D>{static_cast<const Elem*>(a.logits) + row * a.row_stride, a.vocab};
}

FS_CODE_END
}  // namespace fastsample
