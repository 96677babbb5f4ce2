// The bfloat16 batch kernels (dtype_kernels.h).
#include "dtype_kernels.cuh"

namespace fastsample::cuda {
template struct DtypeKernels<DType::kBFloat16>;
}  // namespace fastsample::cuda
