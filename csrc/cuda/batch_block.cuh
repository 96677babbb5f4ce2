// What one thread block does in a batch launch: loop over its rows (blockIdx.x, + gridDim.x,
// ...) running the shared row algorithms (include/fastsample/row_sampler.h) on a BlockCtx in
// its share of the workspace. Device code only: the kernels (dtype_kernels.cuh) wrap it with
// their __shared__ storage, and the host emulation (tests/cuda_emulation) runs it as it is.
#pragma once
#include <cstdint>

#include "block_context.cuh"
#include "fastsample/batch_args.h"
#include "fastsample/row_sampler.h"
#include "scratch_layout.cuh"

namespace fastsample::cuda {

template <bool kProcess, DType D>
__device__ void run_block(const BatchArgs& a, unsigned char* workspace, BlockShared* shared) {
  BlockCtx ctx(shared);
  const ScratchLayout layout(a.vocab, a.edits.enabled, max_patches(a.edits, a.vocab));
  const RowScratch scratch = layout.at(workspace + int64_t(blockIdx.x) * layout.bytes());
  for (int64_t row = blockIdx.x; row < a.batch; row += gridDim.x) {
    // Every thread reads the row's parameters (and seed, which may share memory with
    // out_tokens) before the first barrier inside the row algorithm; thread 0 writes after it.
    const RowParams p = batch_row_params(a, row);
    const RowEdits edits = batch_row_edits(a, row);
    const RowView<D> view = batch_row_view<D>(a, row);
    if constexpr (kProcess) {
      process_row(ctx, view, edits, p, scratch, a.out_logits + row * a.out_row_stride);
    } else {
      const RowLogprobs lp = batch_row_logprobs<RowLogprobs>(a, row);
      const RowSample s = a.logprobs.given_tokens != nullptr
                              ? score_row(ctx, view, a.logprobs.given_tokens[row], scratch, lp.out)
                              : sample_row(ctx, view, edits, p, scratch, lp);
      if (threadIdx.x == 0) {
        a.out_tokens[row] = s.token;
        if (a.out_valid != nullptr) a.out_valid[row] = s.valid ? 1 : 0;
      }
    }
    __syncthreads();  // the next row reuses the block's scratch
  }
}

}  // namespace fastsample::cuda
