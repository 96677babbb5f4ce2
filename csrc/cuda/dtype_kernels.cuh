// The definitions of DtypeKernels<D> and VerifyKernels<D> (dtype_kernels.h): the __global__
// kernels are thin wrappers that give run_block its shared memory. Included by the .cu files of
// each dtype (batch_kernels_*.cu: sample and process; verify_kernels_*.cu: verify).
#pragma once
#include <cuda_runtime.h>

#include "batch_block.cuh"
#include "dtype_kernels.h"

namespace fastsample::cuda {

// Blocks of a task's kernel that must fit on a multiprocessor: two (128 registers) for sampling
// and processing; one for verification, whose residual bookkeeping on top of the filters
// would spill under 128 (its grid, sized for two, then runs in two waves).
template <RowTask kTask>
constexpr int kMinBlocksPerSm = kTask == RowTask::kVerify ? 1 : 2;

// __launch_bounds__(256, 2): block_context.cuh explains the register budget.
template <RowTask kTask, DType D>
__global__ void __launch_bounds__(kBlockThreads, kMinBlocksPerSm<kTask>)
    batch_kernel(const BatchArgs a, unsigned char* workspace) {
  __shared__ BlockShared shared;
  run_block<kTask, D>(a, workspace, &shared);
}

// Enqueue the task's kernel; "" or the CUDA error of the launch.
template <RowTask kTask, DType D>
std::string launch_kernel(const BatchArgs& a, unsigned char* workspace, int64_t blocks,
                          uintptr_t stream) {
  const dim3 grid{static_cast<unsigned>(blocks)};
  batch_kernel<kTask, D><<<grid, kBlockThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      a, workspace);
  // Launch errors only (bad configuration, no device): reading them does not synchronize.
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

template <DType D>
std::string DtypeKernels<D>::launch(RowTask task, const BatchArgs& a, unsigned char* workspace,
                                    int64_t blocks, uintptr_t stream) {
  switch (task) {
    case RowTask::kProcess:
      return launch_kernel<RowTask::kProcess, D>(a, workspace, blocks, stream);
    case RowTask::kVerify:
      return VerifyKernels<D>::launch(a, workspace, blocks, stream);
    default:
      return launch_kernel<RowTask::kSample, D>(a, workspace, blocks, stream);
  }
}

template <DType D>
std::string VerifyKernels<D>::launch(const BatchArgs& a, unsigned char* workspace,
                                     int64_t blocks, uintptr_t stream) {
  return launch_kernel<RowTask::kVerify, D>(a, workspace, blocks, stream);
}

template <DType D>
int DtypeKernels<D>::resident_blocks_per_sm() {
  int blocks = 0;
  const cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocks, batch_kernel<RowTask::kSample, D>, kBlockThreads, 0);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return blocks;
}

}  // namespace fastsample::cuda
