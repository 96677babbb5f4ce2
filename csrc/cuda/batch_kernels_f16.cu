// The float16 batch kernels (dtype_kernels.h).
#include "dtype_kernels.cuh"

namespace fastsample::cuda {
template struct DtypeKernels<DType::kFloat16>;
}  // namespace fastsample::cuda
