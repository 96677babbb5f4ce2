// The CPU backend's entry points, one set per instruction-set level (see dispatch.cpp).
#pragma once
#include "fastsample/common.h"
#include "fastsample/row_params.h"

namespace fastsample::cpu {

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
  int64_t* out_tokens = nullptr;  // sample: [batch]
  uint8_t* out_valid = nullptr;   // sample: [batch], optional
  float* out_logits = nullptr;    // process: [batch, out_row_stride]
  int64_t out_row_stride = 0;
  int num_threads = 0;            // 0: the pool's size
};

#define FS_DECLARE_CPU_ISA(isa)                  \
  namespace isa {                                \
  int64_t sample_batch(const BatchArgs& args);   \
  int64_t process_batch(const BatchArgs& args);  \
  }
FS_DECLARE_CPU_ISA(baseline)
FS_DECLARE_CPU_ISA(avx2)
#undef FS_DECLARE_CPU_ISA

// Runtime dispatch to the best level this CPU supports. Both return the number of rows that had
// no valid token.
int64_t sample_batch(const BatchArgs& args);
int64_t process_batch(const BatchArgs& args);
const char* simd_level();

}  // namespace fastsample::cpu
