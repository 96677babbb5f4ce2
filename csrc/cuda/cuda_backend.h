// The CUDA backend's host entry points (plain C++: the bindings include this without nvcc).
// Pointers in BatchArgs are device pointers; nothing here synchronizes with the host.
#pragma once
#include <cstdint>
#include <string>

#include "fastsample/batch_args.h"
#include "fastsample/contrastive.h"

namespace fastsample::cuda {

// Bytes of global scratch one block needs for the call (its vocabulary and, with stages 1-3,
// its listed ids: include/fastsample/scratch_layout.h). The caller allocates blocks * this from
// torch's caching allocator, so graph capture sees no cudaMalloc.
int64_t workspace_bytes_per_block(const BatchArgs& args);

// Enqueue the batch on `stream` (a cudaStream_t as an integer; 0 is the legacy default stream)
// with `blocks` blocks, each looping over rows blockIdx.x, blockIdx.x + blocks, ...
// Returns "" on success, or the CUDA error text of the launch.
std::string launch_sample(const BatchArgs& args, void* workspace, int64_t blocks,
                          uintptr_t stream);
std::string launch_process(const BatchArgs& args, void* workspace, int64_t blocks,
                           uintptr_t stream);

// Enqueue contrastive search's candidate scores (fastsample/contrastive.h) on `stream` with
// `blocks` blocks (no workspace: shared memory only); "" or the CUDA error of the launch.
std::string launch_contrastive(const ContrastiveArgs& args, int64_t blocks, uintptr_t stream);

// Blocks of the batch kernels that fit on one multiprocessor of the current device at once
// (register and shared-memory limits); 1 if the runtime cannot tell.
int resident_blocks_per_sm();

// Devices the runtime sees; 0 when there is no driver or no GPU (never throws).
int device_count();

// What a user needs to know when the kernels cannot run: the driver's CUDA version and the
// runtime's (linked statically, so fixed at build time) as major * 1000 + minor * 10 (0: no
// driver), and the runtime's error when it sees no device ("" when it sees one).
struct RuntimeStatus {
  int driver_version = 0;
  int runtime_version = 0;
  int devices = 0;
  std::string error;
};
RuntimeStatus runtime_status();

}  // namespace fastsample::cuda
