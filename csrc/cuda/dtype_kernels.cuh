// The definition of DtypeKernels<D> (dtype_kernels.h): the __global__ kernels are thin wrappers
// that give run_block its shared memory. Included by one .cu per dtype.
#pragma once
#include <cuda_runtime.h>

#include "batch_block.cuh"
#include "dtype_kernels.h"

namespace fastsample::cuda {

// __launch_bounds__(256, 2): block_context.cuh explains the register budget.
template <bool kProcess, DType D>
__global__ void __launch_bounds__(kBlockThreads, 2) batch_kernel(const BatchArgs a,
                                                                 unsigned char* workspace) {
  __shared__ BlockShared shared;
  run_block<kProcess, D>(a, workspace, &shared);
}

template <DType D>
std::string DtypeKernels<D>::launch(bool process, const BatchArgs& a, unsigned char* workspace,
                                    int64_t blocks, uintptr_t stream) {
  const dim3 grid{static_cast<unsigned>(blocks)};
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  if (process) {
    batch_kernel<true, D><<<grid, kBlockThreads, 0, s>>>(a, workspace);
  } else {
    batch_kernel<false, D><<<grid, kBlockThreads, 0, s>>>(a, workspace);
  }
  // Launch errors only (bad configuration, no device): reading them does not synchronize.
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

template <DType D>
int DtypeKernels<D>::resident_blocks_per_sm() {
  int blocks = 0;
  const cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocks, batch_kernel<false, D>, kBlockThreads, 0);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return blocks;
}

}  // namespace fastsample::cuda
