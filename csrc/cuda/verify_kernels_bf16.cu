// The bfloat16 verify kernel (dtype_kernels.h, VerifyKernels).
#include "dtype_kernels.cuh"

namespace fastsample::cuda {
template struct VerifyKernels<DType::kBFloat16>;
}  // namespace fastsample::cuda
