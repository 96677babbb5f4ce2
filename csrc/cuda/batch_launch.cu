// The CUDA backend's host entry points (cuda_backend.h): the launch checks, the dispatch to the
// kernels of the call's dtype, and what the runtime says about the machine. No algorithm here.
#include <cuda_runtime.h>

#include "contrastive_kernels.h"
#include "cuda_backend.h"
#include "dtype_kernels.h"
#include "fastsample/scratch_layout.h"

namespace fastsample::cuda {
namespace {

std::string launch(RowTask task, const BatchArgs& a, void* workspace, int64_t blocks,
                   uintptr_t stream) {
  if (a.batch == 0) return "";
  if (blocks < 1 || blocks > a.batch || blocks > 0x7fffffff) return "invalid block count";
  auto* ws = static_cast<unsigned char*>(workspace);
  switch (a.dtype) {
    case DType::kFloat16:
      return DtypeKernels<DType::kFloat16>::launch(task, a, ws, blocks, stream);
    case DType::kBFloat16:
      return DtypeKernels<DType::kBFloat16>::launch(task, a, ws, blocks, stream);
    default:
      return DtypeKernels<DType::kFloat32>::launch(task, a, ws, blocks, stream);
  }
}

}  // namespace

int64_t workspace_bytes_per_block(const BatchArgs& a) {
  return scratch_layout(a, /*dense_edits=*/false).bytes();
}

std::string launch_sample(const BatchArgs& a, void* workspace, int64_t blocks, uintptr_t stream) {
  return launch(sample_task(a), a, workspace, blocks, stream);
}
std::string launch_process(const BatchArgs& a, void* workspace, int64_t blocks, uintptr_t stream) {
  return launch(RowTask::kProcess, a, workspace, blocks, stream);
}

std::string launch_contrastive(const ContrastiveArgs& a, int64_t blocks, uintptr_t stream) {
  if (a.batch == 0) return "";
  if (blocks < 1 || blocks > a.batch || blocks > 0x7fffffff) return "invalid block count";
  switch (a.dtype) {
    case DType::kFloat16: return launch_contrastive_blocks<DType::kFloat16>(a, blocks, stream);
    case DType::kBFloat16: return launch_contrastive_blocks<DType::kBFloat16>(a, blocks, stream);
    default: return launch_contrastive_blocks<DType::kFloat32>(a, blocks, stream);
  }
}

int resident_blocks_per_sm() {
  // The nine kernels share one body and one launch bound; the fewest resident blocks of the
  // three dtypes' sample kernels is safe for all (the grid never exceeds what runs at once).
  int blocks = DtypeKernels<DType::kFloat32>::resident_blocks_per_sm();
  const int f16 = DtypeKernels<DType::kFloat16>::resident_blocks_per_sm();
  const int bf16 = DtypeKernels<DType::kBFloat16>::resident_blocks_per_sm();
  blocks = f16 < blocks ? f16 : blocks;
  blocks = bf16 < blocks ? bf16 : blocks;
  return blocks < 1 ? 1 : blocks;
}

RuntimeStatus runtime_status() {
  RuntimeStatus st;
  if (cudaDriverGetVersion(&st.driver_version) != cudaSuccess) st.driver_version = 0;
  if (cudaRuntimeGetVersion(&st.runtime_version) != cudaSuccess) st.runtime_version = 0;
  const cudaError_t err = cudaGetDeviceCount(&st.devices);
  if (err != cudaSuccess) {
    st.devices = 0;
    st.error = cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later calls start clean
  }
  return st;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return n;
}

}  // namespace fastsample::cuda
