// The float16 verify kernel (dtype_kernels.h, VerifyKernels).
#include "dtype_kernels.cuh"

namespace fastsample::cuda {
template struct VerifyKernels<DType::kFloat16>;
}  // namespace fastsample::cuda
