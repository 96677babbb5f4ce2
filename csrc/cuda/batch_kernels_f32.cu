// The float32 batch kernels (dtype_kernels.h).
#include "dtype_kernels.cuh"

namespace fastsample::cuda {
template struct DtypeKernels<DType::kFloat32>;
}  // namespace fastsample::cuda
