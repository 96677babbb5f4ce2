// The contrastive-search scoring kernel of one hidden-state dtype (plain C++: batch_launch.cu
// dispatches to it by the call's dtype; the host emulation defines its own).
#pragma once
#include <cstdint>
#include <string>

#include "fastsample/contrastive.h"

namespace fastsample::cuda {

// Enqueue the scoring of every row on `stream` with `blocks` blocks (each looping over rows
// blockIdx.x, blockIdx.x + blocks, ...); "" or the CUDA error of the launch.
template <DType D>
std::string launch_contrastive_blocks(const ContrastiveArgs& args, int64_t blocks,
                                      uintptr_t stream);

}  // namespace fastsample::cuda
