// The host emulation's DtypeKernels (csrc/cuda/dtype_kernels.h) and contrastive launchers
// (contrastive_kernels.h): the real run_block and contrastive_block of every dtype on host
// threads (cuda_host_emulation.h) where the GPU build has a __global__ launch.
// With the real batch_launch.cu (included at the end: dispatch, checks, workspace layout) and
// csrc/bindings/module.cpp, this makes the _cuda_emulated module: fastsample._C's interface
// whose cuda_* entry points run the CUDA block code on host memory. Compiled with
// FS_CPU_ISA=cuda_emulated, so the shared algorithms it instantiates never share a symbol
// with the CPU kernels' copies.
#include "cuda_host_emulation.h"

#include <atomic>

#include "batch_block.cuh"
#include "contrastive_block.cuh"
#include "contrastive_kernels.h"
#include "dtype_kernels.h"

namespace fastsample::cuda {

namespace {
// Each launch fills shared memory and the workspace with different garbage.
std::atomic<uint64_t> launches{0};
}  // namespace

template <DType D>
std::string DtypeKernels<D>::launch(RowTask task, const BatchArgs& a, unsigned char* workspace,
                                    int64_t blocks, uintptr_t) {
  const ScratchLayout layout = scratch_layout(a, /*dense_edits=*/false);
  const uint64_t seed = ++launches;
  fs_emu::fill_garbage(workspace, size_t(blocks * layout.bytes()), seed);
  return fs_emu::launch<BlockShared>(blocks, kBlockThreads, seed, [&](BlockShared* shared) {
    switch (task) {
      case RowTask::kProcess: run_block<RowTask::kProcess, D>(a, workspace, shared); break;
      case RowTask::kVerify: run_block<RowTask::kVerify, D>(a, workspace, shared); break;
      default: run_block<RowTask::kSample, D>(a, workspace, shared);
    }
  });
}

// One block per "multiprocessor": the Python side chooses how many the emulated device has.
template <DType D>
int DtypeKernels<D>::resident_blocks_per_sm() {
  return 1;
}

template <DType D>
std::string launch_contrastive_blocks(const ContrastiveArgs& a, int64_t blocks, uintptr_t) {
  return fs_emu::launch<ContrastiveShared>(blocks, kContrastiveThreads, ++launches,
                                           [&](ContrastiveShared* shared) {
    contrastive_block<D>(a, shared);
  });
}

template std::string launch_contrastive_blocks<DType::kFloat32>(const ContrastiveArgs&, int64_t,
                                                                uintptr_t);
template std::string launch_contrastive_blocks<DType::kFloat16>(const ContrastiveArgs&, int64_t,
                                                                uintptr_t);
template std::string launch_contrastive_blocks<DType::kBFloat16>(const ContrastiveArgs&, int64_t,
                                                                 uintptr_t);

template struct DtypeKernels<DType::kFloat32>;
template struct DtypeKernels<DType::kFloat16>;
template struct DtypeKernels<DType::kBFloat16>;

}  // namespace fastsample::cuda

#include "batch_launch.cu"
