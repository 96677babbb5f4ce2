// The batch kernels of one logits dtype (sample and process), each dtype compiled in its own
// translation unit (batch_kernels_{f32,f16,bf16}.cu) so a build compiles them in parallel.
// Plain C++: batch_launch.cu dispatches to these by the call's dtype.
#pragma once
#include <cstdint>
#include <string>

#include "fastsample/batch_args.h"

namespace fastsample::cuda {

template <DType D>
struct DtypeKernels {
  // Enqueue the kernel of the task; "" or the CUDA error of the launch.
  static std::string launch(RowTask task, const BatchArgs& args, unsigned char* workspace,
                            int64_t blocks, uintptr_t stream);
  // Blocks of the sample kernel resident on one multiprocessor (0 if the runtime cannot tell).
  static int resident_blocks_per_sm();
};

extern template struct DtypeKernels<DType::kFloat32>;
extern template struct DtypeKernels<DType::kFloat16>;
extern template struct DtypeKernels<DType::kBFloat16>;

// The verify kernel of one dtype, in translation units of its own
// (verify_kernels_{f32,f16,bf16}.cu): beside the sample and process kernels, one unit's nvcc
// outgrew the memory a 2-core CI machine's parallel build jobs have.
template <DType D>
struct VerifyKernels {
  static std::string launch(const BatchArgs& args, unsigned char* workspace, int64_t blocks,
                            uintptr_t stream);
};

extern template struct VerifyKernels<DType::kFloat32>;
extern template struct VerifyKernels<DType::kFloat16>;
extern template struct VerifyKernels<DType::kBFloat16>;

}  // namespace fastsample::cuda
