// The CUDA execution context: one thread block works on one row (include/fastsample/
// exec_context.h has the contract). Every thread is a worker with a contiguous segment of the
// row; reductions and scans are CUB block primitives; histograms live in shared memory.
//
// Every member that synchronizes (__syncthreads) is reached by all threads of the block: the
// shared algorithms only branch around these calls on values that are identical on all workers.
#pragma once
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include "chunk_loads.cuh"
#include "fastsample/common.h"
#include "fastsample/exec_context.h"
#include "fastsample/views.h"

namespace fastsample::cuda {

// 256 threads: enough to keep a row's loads in flight. __launch_bounds__(256, 2) caps the
// kernels at 128 registers, so two blocks fit on a multiprocessor whatever a new stage adds to
// the code (left free, the allocation drifted to 135-140 with typical-p); the per-chunk arrays
// and the logprob lists fit under the cap without spilling, which CI checks on every build.
constexpr int kBlockThreads = 256;
constexpr int kBlockWarps = kBlockThreads / 32;
constexpr int kHistBins = kRadixBins > kMassBins ? kRadixBins : kMassBins;

struct KeyToken {
  uint32_t key;
  int64_t token;  // INT64_MAX: this worker saw nothing
};

// Larger key; among equal keys the lower token (CpuCtx::argmax decides the same way).
struct KeyTokenMax {
  __device__ KeyToken operator()(const KeyToken& a, const KeyToken& b) const {
    if (a.token == INT64_MAX) return b;
    if (b.token == INT64_MAX) return a;
    if (a.key != b.key) return a.key > b.key ? a : b;
    return a.token <= b.token ? a : b;
  }
};

struct MinI64 {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a < b ? a : b; }
};

using ReduceU64 = cub::BlockReduce<uint64_t, kBlockThreads>;
using ReduceI64 = cub::BlockReduce<int64_t, kBlockThreads>;
using ReduceKeyToken = cub::BlockReduce<KeyToken, kBlockThreads>;
using ScanU64 = cub::BlockScan<uint64_t, kBlockThreads>;

// The block's shared memory (about 19 KB: under the 48 KB static limit on every architecture).
struct BlockShared {
  union {
    typename ReduceU64::TempStorage reduce_u64;
    typename ReduceI64::TempStorage reduce_i64;
    typename ReduceKeyToken::TempStorage reduce_key_token;
    typename ScanU64::TempStorage scan_u64;
  } cub;
  uint64_t hist[kHistBins];
  uint64_t u64;
  int64_t i64;
  KeyToken key_token;
};

class BlockCtx {
 public:
  // Eight logits: two 16-byte loads of float32, one of float16/bfloat16 (chunk_loads.cuh).
  static constexpr int kChunk = 8;

  __device__ explicit BlockCtx(BlockShared* shared) : sh_(shared) {}

  __device__ int64_t rank() const { return threadIdx.x; }
  __device__ int64_t size() const { return kBlockThreads; }

  // Short lists are processed by the whole block as well: it has no cheaper way to run them.
  __device__ BlockCtx solo() const { return *this; }
  __device__ RowScratch solo_scratch(const RowScratch& block) const { return block; }

  // Boundaries on multiples of kChunk, so every full chunk starts 16-byte aligned when the row
  // does; the last worker takes the remainder.
  __device__ void segment(int64_t n, int64_t* begin, int64_t* end) const {
    *begin = boundary(n, threadIdx.x);
    *end = boundary(n, threadIdx.x + 1);
  }

  __device__ void sync() const { __syncthreads(); }
  // Edited rows are read through their patches (row_edits.h): a copy of V keys in global
  // memory would cost a pass of stores for the few passes that follow.
  static constexpr bool kDenseEdits = false;
  __device__ int32_t exchange_i32(int32_t* p, int32_t v) const { return atomicExch(p, v); }
  __device__ int32_t fetch_add_i32(int32_t* p, int32_t v) const { return atomicAdd(p, v); }
  __device__ uint32_t fetch_or_u32(uint32_t* p, uint32_t v) const { return atomicOr(p, v); }
  __device__ int32_t compare_exchange_i32(int32_t* p, int32_t expected, int32_t desired) const {
    return atomicCAS(p, expected, desired);
  }

  __device__ uint64_t sum_u64(uint64_t v) {
    const uint64_t s = ReduceU64(sh_->cub.reduce_u64).Sum(v);
    if (threadIdx.x == 0) sh_->u64 = s;
    __syncthreads();
    const uint64_t all = sh_->u64;
    __syncthreads();
    return all;
  }

  __device__ int64_t min_i64(int64_t v) {
    const int64_t m = ReduceI64(sh_->cub.reduce_i64).Reduce(v, MinI64{});
    if (threadIdx.x == 0) sh_->i64 = m;
    __syncthreads();
    const int64_t all = sh_->i64;
    __syncthreads();
    return all;
  }

  __device__ void argmax(uint32_t* key, int64_t* token) {
    const KeyToken best =
        ReduceKeyToken(sh_->cub.reduce_key_token).Reduce(KeyToken{*key, *token}, KeyTokenMax{});
    if (threadIdx.x == 0) sh_->key_token = best;
    __syncthreads();
    *key = sh_->key_token.key;
    *token = sh_->key_token.token;
    __syncthreads();
  }

  __device__ uint64_t exclusive_scan_u64(uint64_t v, uint64_t* total) {
    uint64_t before = 0, all = 0;
    ScanU64(sh_->cub.scan_u64).ExclusiveSum(v, before, all);
    __syncthreads();
    *total = all;
    return before;
  }

  // Shared-memory histogram. A worker's segment is contiguous, so neighbouring elements often
  // share a bin (the far tail of a row all lands in the last one): runs of one bin are summed
  // in a register and added with one atomic, which keeps contention on hot bins low.
  __device__ uint64_t* hist_begin(int bins) {
    __syncthreads();  // the previous histogram may still be being read
    for (int b = threadIdx.x; b < bins; b += kBlockThreads) sh_->hist[b] = 0;
    run_bin_ = -1;
    run_weight_ = 0;
    __syncthreads();
    return sh_->hist;
  }
  __device__ void hist_add(uint64_t* h, int bin, uint64_t w) {
    if (bin == run_bin_) {
      run_weight_ += w;
      return;
    }
    flush(h);
    run_bin_ = bin;
    run_weight_ = w;
  }
  template <class Visit>
  __device__ static void for_each_below(const float* values, int n, float bound,
                                        const Visit& visit) {
    for (int j = 0; j < n; ++j) {
      if (values[j] < bound) visit(j);
    }
  }
  __device__ const uint64_t* hist_end(uint64_t* h, int) {
    flush(h);
    __syncthreads();
    return h;
  }

  // One warp per group: each lane reads two of its 64 elements (coalesced), then a warp max.
  template <class View>
  __device__ void group_max(const View& view, uint32_t* gmax) {
    const int lane = threadIdx.x & 31;
    const int64_t n = view.size();
    const int64_t groups = num_groups(n);
    for (int64_t g = threadIdx.x >> 5; g < groups; g += kBlockWarps) {
      const int64_t i = g * kGroup + lane;
      uint32_t m = i < n ? view.key(i) : 0u;
      if (i + 32 < n) {
        const uint32_t k = view.key(i + 32);
        m = k > m ? k : m;
      }
      m = warp_max(m);
      if (lane == 0) gmax[g] = m;
    }
    __syncthreads();
  }

  // Each warp owns a contiguous run of groups and compacts it with ballots, 32 elements at a
  // time (coalesced reads and writes); a block scan over the warps' counts places the runs in
  // view order. Two passes: count, then write (the second read mostly hits L1/L2).
  template <class View, class Pred>
  __device__ int64_t compact(const View& view, uint32_t min_key, const Pred& keep,
                             uint32_t* out_keys, int32_t* out_tokens, int64_t cap,
                             const uint32_t* gmax) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int64_t n = view.size();
    const int64_t groups = num_groups(n);
    const int64_t g0 = groups * warp / kBlockWarps;
    const int64_t g1 = groups * (warp + 1) / kBlockWarps;
    uint64_t warp_count = 0;  // the same in every lane
    for (int64_t g = g0; g < g1; ++g) {
      if (gmax != nullptr && gmax[g] < min_key) continue;
      for (int64_t i = g * kGroup + lane; i < (g + 1) * kGroup; i += 32) {
        const uint32_t key = i < n ? view.key(i) : 0u;
        const bool take = i < n && key >= min_key && keep(key);
        warp_count += __popc(__ballot_sync(0xffffffffu, take));
      }
    }
    uint64_t total = 0;
    const uint64_t before = exclusive_scan_u64(lane == 0 ? warp_count : 0, &total);
    uint64_t pos = __shfl_sync(0xffffffffu, before, 0);
    const uint32_t lanes_below = (1u << lane) - 1u;
    for (int64_t g = g0; g < g1 && pos < uint64_t(cap); ++g) {
      if (gmax != nullptr && gmax[g] < min_key) continue;
      for (int64_t i = g * kGroup + lane; i < (g + 1) * kGroup; i += 32) {
        const uint32_t key = i < n ? view.key(i) : 0u;
        const bool take = i < n && key >= min_key && keep(key);
        const uint32_t mask = __ballot_sync(0xffffffffu, take);
        const uint64_t at = pos + __popc(mask & lanes_below);
        if (take && at < uint64_t(cap)) {
          out_keys[at] = key;
          out_tokens[at] = int32_t(view.token(i));
        }
        pos += __popc(mask);
      }
    }
    __syncthreads();  // the list is read by every worker next
    return int64_t(total);
  }

  // Full chunks are visited with a constant count, so the visitor's per-chunk arrays are fully
  // unrolled into registers; a segment's tail is visited one element at a time for the same
  // reason.
  template <class View, class Visit>
  __device__ void for_each_chunk(const View& view, const Visit& visit) {
    visit_chunks(view, [](int64_t) { return false; }, visit);
  }

  // for_each_chunk without the chunks of groups whose maximum is below min_key (a chunk never
  // straddles two groups: kGroup is a multiple of kChunk and so are segment boundaries).
  template <class View, class Visit>
  __device__ void for_each_chunk_at_least(const View& view, const uint32_t* gmax,
                                          uint32_t min_key, const Visit& visit) {
    static_assert(kGroup % kChunk == 0, "chunks must not straddle groups");
    visit_chunks(view, [&](int64_t i) { return gmax[i / kGroup] < min_key; }, visit);
  }

 private:
  // This thread's segment a chunk at a time, leaving out chunks starting at i when skip(i).
  template <class View, class Skip, class Visit>
  __device__ void visit_chunks(const View& view, const Skip& skip, const Visit& visit) {
    int64_t begin, end;
    segment(view.size(), &begin, &end);
    const ChunkLoader<View> load(view);
    uint32_t keys[kChunk];
    int64_t i = begin;
    for (; i + kChunk <= end; i += kChunk) {
      if (skip(i)) continue;
      load.chunk(i, keys);
      visit(keys, i, kChunk);
    }
    for (; i < end; ++i) {
      if (skip(i)) continue;
      keys[0] = view.key(i);
      visit(keys, i, 1);
    }
  }

  __device__ static int64_t boundary(int64_t n, int64_t r) {
    if (r >= kBlockThreads) return n;
    const int64_t b = (n * r / kBlockThreads) / kChunk * kChunk;
    return b < n ? b : n;
  }

  __device__ static uint32_t warp_max(uint32_t m) {
#if __CUDA_ARCH__ >= 800
    return __reduce_max_sync(0xffffffffu, m);
#else
    for (int d = 16; d > 0; d >>= 1) {
      const uint32_t o = __shfl_xor_sync(0xffffffffu, m, d);
      m = o > m ? o : m;
    }
    return m;
#endif
  }

  __device__ void flush(uint64_t* h) {
    if (run_bin_ >= 0 && run_weight_ != 0) {
      atomicAdd(reinterpret_cast<unsigned long long*>(h + run_bin_),
                static_cast<unsigned long long>(run_weight_));
    }
  }

  BlockShared* sh_;
  int run_bin_ = -1;
  uint64_t run_weight_ = 0;
};

static_assert(is_exec_context<BlockCtx>(), "BlockCtx keeps the contract of exec_context.h");

}  // namespace fastsample::cuda
