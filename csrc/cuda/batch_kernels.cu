// The CUDA batch kernels: one block per row at a time, running the shared row algorithms
// (include/fastsample/row_sampler.h) on a BlockCtx. Launch code only; no algorithm lives here.
#include <cuda_runtime.h>

#include "block_context.cuh"
#include "cuda_backend.h"
#include "fastsample/batch_args.h"
#include "fastsample/row_sampler.h"

namespace fastsample::cuda {
namespace {

// Where one block's RowScratch lives inside its share of the workspace (16-byte aligned parts).
// The stage 1-3 buffers (patches and their bitsets, marks, raw group maxima) exist only when a
// call has edits.
struct ScratchLayout {
  int64_t group_max, cand_keys, cand_tokens, bin_keys, bin_tokens, patch, edited, list_tokens,
      list_keys, list_raw_keys, list_counts, group_start, allowed, seen, counted, marks,
      max_patched, raw_group_max, bytes, list_cap;
  bool edits;

  __host__ __device__ ScratchLayout(int64_t vocab, bool with_edits, int64_t patches)
      : edits(with_edits) {
    const auto round16 = [](int64_t b) { return (b + 15) / 16 * 16; };
    group_max = 0;
    cand_keys = group_max + round16(4 * num_groups(vocab));
    cand_tokens = cand_keys + round16(4 * int64_t(kFastListCap));
    bin_keys = cand_tokens + round16(4 * int64_t(kFastListCap));
    bin_tokens = bin_keys + round16(4 * int64_t(kBinListCap));
    const int64_t bits = edits ? round16(4 * num_words(vocab)) : 0;
    patch = bin_tokens + round16(4 * int64_t(kBinListCap));
    edited = patch + (edits ? round16(4 * vocab) : 0);
    const int64_t per_group = edits ? round16(4 * (num_groups(vocab) + 1)) : 0;
    const int64_t listed = edits ? round16(4 * patches) : 0;
    list_cap = edits ? patches : 0;
    list_tokens = edited + bits;
    list_keys = list_tokens + listed;
    list_raw_keys = list_keys + listed;
    list_counts = list_raw_keys + listed;
    group_start = list_counts + listed;
    allowed = group_start + per_group;
    seen = allowed + bits;
    counted = seen + bits;
    marks = counted + bits;
    max_patched = marks + (edits ? round16(4 * (vocab + 1)) : 0);
    raw_group_max = max_patched + per_group;
    bytes = raw_group_max + (edits ? round16(4 * num_groups(vocab)) : 0);
  }

  __device__ RowScratch at(unsigned char* base) const {
    RowScratch s{reinterpret_cast<uint32_t*>(base + group_max),
                 reinterpret_cast<uint32_t*>(base + cand_keys),
                 reinterpret_cast<int32_t*>(base + cand_tokens),
                 reinterpret_cast<uint32_t*>(base + bin_keys),
                 reinterpret_cast<int32_t*>(base + bin_tokens), kBinListCap,
                 nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr,
                 nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    if (edits) {
      s.patch = reinterpret_cast<uint32_t*>(base + patch);
      s.edited = reinterpret_cast<uint32_t*>(base + edited);
      s.list_tokens = reinterpret_cast<int32_t*>(base + list_tokens);
      s.list_keys = reinterpret_cast<uint32_t*>(base + list_keys);
      s.list_raw_keys = reinterpret_cast<uint32_t*>(base + list_raw_keys);
      s.list_cap = list_cap;
      s.list_counts = reinterpret_cast<int32_t*>(base + list_counts);
      s.group_start = reinterpret_cast<int32_t*>(base + group_start);
      s.allowed = reinterpret_cast<uint32_t*>(base + allowed);
      s.seen = reinterpret_cast<uint32_t*>(base + seen);
      s.counted = reinterpret_cast<uint32_t*>(base + counted);
      s.marks = reinterpret_cast<int32_t*>(base + marks);
      s.max_patched = reinterpret_cast<uint32_t*>(base + max_patched);
      s.raw_group_max = reinterpret_cast<uint32_t*>(base + raw_group_max);
    }
    return s;
  }
};

template <bool kProcess, DType D>
__global__ void __launch_bounds__(kBlockThreads, 1) batch_kernel(const BatchArgs a,
                                                                 unsigned char* workspace) {
  __shared__ BlockShared shared;
  BlockCtx ctx(&shared);
  const ScratchLayout layout(a.vocab, a.edits.enabled, max_patches(a.edits, a.vocab));
  const RowScratch scratch = layout.at(workspace + int64_t(blockIdx.x) * layout.bytes);
  if (a.edits.enabled) {
    // row_edits.h keeps marks zero between rows; the workspace arrives uninitialized.
    for (int64_t i = threadIdx.x; i <= a.vocab; i += kBlockThreads) scratch.marks[i] = 0;
    __syncthreads();
  }
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

template <bool kProcess>
std::string launch(const BatchArgs& a, void* workspace, int64_t blocks, uintptr_t stream) {
  if (a.batch == 0) return "";
  if (blocks < 1 || blocks > a.batch || blocks > 0x7fffffff) return "invalid block count";
  const dim3 grid{static_cast<unsigned>(blocks)};
  cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  auto* ws = static_cast<unsigned char*>(workspace);
  switch (a.dtype) {
    case DType::kFloat16:
      batch_kernel<kProcess, DType::kFloat16><<<grid, kBlockThreads, 0, s>>>(a, ws);
      break;
    case DType::kBFloat16:
      batch_kernel<kProcess, DType::kBFloat16><<<grid, kBlockThreads, 0, s>>>(a, ws);
      break;
    default:
      batch_kernel<kProcess, DType::kFloat32><<<grid, kBlockThreads, 0, s>>>(a, ws);
      break;
  }
  // Launch errors only (bad configuration, no device): reading them does not synchronize.
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

}  // namespace

int64_t workspace_bytes_per_block(int64_t vocab, bool edits, int64_t patches) {
  return ScratchLayout(vocab, edits, patches).bytes;
}

std::string launch_sample(const BatchArgs& a, void* workspace, int64_t blocks, uintptr_t stream) {
  return launch<false>(a, workspace, blocks, stream);
}
std::string launch_process(const BatchArgs& a, void* workspace, int64_t blocks, uintptr_t stream) {
  return launch<true>(a, workspace, blocks, stream);
}

int resident_blocks_per_sm() {
  int blocks = 0;
  // The six kernels share one body; the float32 sample kernel stands for them all.
  const cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocks, batch_kernel<false, DType::kFloat32>, kBlockThreads, 0);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return 1;
  }
  return blocks < 1 ? 1 : blocks;
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
