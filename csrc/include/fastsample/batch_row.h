// One row of a batch call on any execution context: the row's arguments out of BatchArgs, the
// row algorithm (sample, score a given token, verify a draft node, or process), and the row's outputs. The CPU
// kernels (csrc/cpu/batch_kernels.cpp) and the CUDA block loop (csrc/cuda/batch_block.cuh)
// differ only in how they hand rows to contexts and where the scratch lives.
#pragma once
#include <cstdint>

#include "fastsample/batch_args.h"
#include "fastsample/row_sampler.h"

namespace fastsample {
FS_CODE_BEGIN

// Returns whether the row had a valid token (process: a finite logit). Every worker reads the
// row's arguments (the seed may share memory with out_tokens) before the first sync inside the
// row algorithm; rank 0 writes the outputs after it. The caller syncs before the scratch
// serves another row.
template <RowTask kTask, DType D, class Ctx>
FS_HOST_DEVICE bool run_batch_row(Ctx& ctx, const BatchArgs& a, int64_t row,
                                  const RowScratch& scratch) {
  const RowParams p = batch_row_params(a, row);
  const RowView<D> view = batch_row_view<D>(a, row);
  // After the row's arguments are read: the check syncs the workers.
  const RowEdits edits = without_full_bitmask(ctx, batch_row_edits(a, row), a.vocab);
  if constexpr (kTask == RowTask::kProcess) {
    return process_row(ctx, view, edits, p, scratch, a.out_logits + row * a.out_row_stride);
  } else if constexpr (kTask == RowTask::kVerify) {
    const RowLogprobs lp = batch_row_logprobs<RowLogprobs>(a, row);
    const RowVerdict v = verify_row(ctx, view, edits, p, scratch, lp, NodeRow{&a.verify, row});
    if (ctx.rank() == 0) {
      a.out_tokens[row] = v.token;
      if (a.out_valid != nullptr) a.out_valid[row] = v.valid ? 1 : 0;
      a.verify.out_child[row] = v.child;
    }
    return v.valid;
  } else {
    const RowLogprobs lp = batch_row_logprobs<RowLogprobs>(a, row);
    const RowSample s = a.logprobs.given_tokens != nullptr
                            ? score_row(ctx, view, a.logprobs.given_tokens[row], scratch, lp.out)
                            : sample_row(ctx, view, edits, p, scratch, lp);
    if (ctx.rank() == 0) {
      a.out_tokens[row] = s.token;
      if (a.out_valid != nullptr) a.out_valid[row] = s.valid ? 1 : 0;
    }
    return s.valid;
  }
}

FS_CODE_END
}  // namespace fastsample
