// The contrastive-search scoring kernels (contrastive_block.cuh), one per hidden-state dtype.
#include <cuda_runtime.h>

#include "contrastive_block.cuh"
#include "contrastive_kernels.h"

namespace fastsample::cuda {

template <DType D>
__global__ void __launch_bounds__(kContrastiveThreads) contrastive_kernel(const ContrastiveArgs a) {
  __shared__ ContrastiveShared shared;
  contrastive_block<D>(a, &shared);
}

template <DType D>
std::string launch_contrastive_blocks(const ContrastiveArgs& a, int64_t blocks,
                                      uintptr_t stream) {
  contrastive_kernel<D><<<dim3{static_cast<unsigned>(blocks)}, kContrastiveThreads, 0,
                          reinterpret_cast<cudaStream_t>(stream)>>>(a);
  const cudaError_t err = cudaGetLastError();  // launch errors only: no synchronization
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

template std::string launch_contrastive_blocks<DType::kFloat32>(const ContrastiveArgs&, int64_t,
                                                                uintptr_t);
template std::string launch_contrastive_blocks<DType::kFloat16>(const ContrastiveArgs&, int64_t,
                                                                uintptr_t);
template std::string launch_contrastive_blocks<DType::kBFloat16>(const ContrastiveArgs&, int64_t,
                                                                 uintptr_t);

}  // namespace fastsample::cuda
