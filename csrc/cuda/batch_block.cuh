// What one thread block does in a batch launch: loop over its rows (blockIdx.x, + gridDim.x,
// ...) running the shared row driver (include/fastsample/batch_row.h) on a BlockCtx in its
// share of the workspace. Device code only: the kernels (dtype_kernels.cuh) wrap it with
// their __shared__ storage, and the host emulation (tests/cuda_emulation) runs it as it is.
#pragma once
#include <cstdint>

#include "block_context.cuh"
#include "fastsample/batch_row.h"
#include "fastsample/scratch_layout.h"

namespace fastsample::cuda {

template <RowTask kTask, DType D>
__device__ void run_block(const BatchArgs& a, unsigned char* workspace, BlockShared* shared) {
  BlockCtx ctx(shared);
  const ScratchLayout layout = scratch_layout(a, /*dense_edits=*/false);
  const RowScratch scratch = layout.at(workspace + int64_t(blockIdx.x) * layout.bytes());
  for (int64_t row = blockIdx.x; row < a.batch; row += gridDim.x) {
    run_batch_row<kTask, D>(ctx, a, row, scratch);
    __syncthreads();  // the next row reuses the block's scratch
  }
}

}  // namespace fastsample::cuda
