// The CPU execution context (see include/fastsample/exec_context.h): one worker, or a team of
// threads sharing one row through a spin barrier. Chunks of keys are decoded into a buffer with
// a plain loop so the shared per-chunk loops vectorize.
#pragma once
#include <atomic>
#include <cstring>
#include <memory>
#include <thread>

#include "chunk_loads.h"
#include "cpu_backend.h"
#include "fastsample/common.h"
#include "fastsample/exec_context.h"
#include "fastsample/scratch_layout.h"
#include "fastsample/views.h"
#include "simd_group_max.h"
#include "simd_list_below.h"
#include "thread_pool.h"

namespace fastsample::cpu {
FS_CODE_BEGIN

// Sense-reversing spin barrier for the workers of one team.
// (Here, not in thread_pool.h: it is compiled per instruction-set level with the kernels.)
class SpinBarrier {
 public:
  void reset(int n) {
    n_ = n;
    count_.store(0);
    sense_.store(false);
  }
  void wait(bool* local_sense) {
    *local_sense = !*local_sense;
    if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      count_.store(0, std::memory_order_relaxed);
      sense_.store(*local_sense, std::memory_order_release);
    } else {
      int spins = 0;
      while (sense_.load(std::memory_order_acquire) != *local_sense) {
        if (++spins > 4096) std::this_thread::yield();
      }
    }
  }

 private:
  int n_ = 1;
  std::atomic<int> count_{0};
  std::atomic<bool> sense_{false};
};

template <class T>
FS_INLINE T min_of(T a, T b) { return a < b ? a : b; }

// A growable array. Not std::vector: its member functions would be instantiated under the same
// symbol in every instruction-set object, and the linker would keep just one of them.
template <class T>
struct Buffer {
  std::unique_ptr<T[]> data;
  size_t size = 0;
  // Zero-filled when (re)allocated: the marks of row_edits.h rely on it.
  T* at_least(size_t n) {
    if (n > size) {
      data.reset(new T[n]());
      size = n;
    }
    return data.get();
  }
};

constexpr int kMaxTeam = 64;
constexpr int kHistCapacity = kRadixBins > kMassBins ? kRadixBins : kMassBins;

// What the workers of one team share.
struct alignas(64) TeamShared {
  SpinBarrier barrier;
  uint64_t u64[kMaxTeam];
  uint32_t keys[kMaxTeam];
  int64_t tokens[kMaxTeam];
  const uint64_t* hists[kMaxTeam];
  uint64_t merged[kHistCapacity];
  RowScratch scratch;  // the team's row scratch, published by rank 0
};

// A worker's own buffers, reused across calls.
struct WorkerBuffers {
  uint64_t hist[kHistCapacity];
  Buffer<uint32_t> local_keys;
  Buffer<int32_t> local_tokens;
  // A group's row scratch, as ScratchLayout places it (used from the group's first worker).
  Buffer<unsigned char> scratch;
  // Dense edits' output counts (V + 1 entries) then DRY repeats (V): zeros between rows
  // (Buffer zero-fills them; row_edits_dense.h clears what it sets), so outside the reused
  // scratch.
  Buffer<int32_t> marks;
  // This worker's own boundary-bin buffers for work it repeats alone (CpuCtx::solo).
  Buffer<uint32_t> solo_bin_keys;
  Buffer<int32_t> solo_bin_tokens;

  RowScratch row_scratch(const BatchArgs& a) {
    const bool dense = edited_rows_dense();
    const ScratchLayout layout = scratch_layout(a, dense);
    RowScratch s = layout.at(scratch.at_least(size_t(layout.bytes())));
    if (a.edits.enabled && dense) {
      s.marks = marks.at_least(2 * size_t(a.vocab) + 1);
      s.repeats = s.marks + a.vocab + 1;
    }
    return s;
  }
};

class CpuCtx {
 public:
  static constexpr int kChunk = 256;

  CpuCtx(int rank, int size, TeamShared* shared, WorkerBuffers* buf)
      : rank_(rank), size_(size), shared_(shared), buf_(buf) {}

  int64_t rank() const { return rank_; }

  // Short lists are cheaper to process on every worker of a team than to share: no barriers.
  // The solo context and scratch let each worker do so with its own buffers.
  CpuCtx solo() const { return CpuCtx(0, 1, nullptr, buf_); }
  RowScratch solo_scratch(const RowScratch& team) const {
    RowScratch own = team;
    own.bin_keys = buf_->solo_bin_keys.at_least(kFastListCap);
    own.bin_tokens = buf_->solo_bin_tokens.at_least(kFastListCap);
    own.bin_cap = kFastListCap;
    return own;
  }
  int64_t size() const { return size_; }

  void segment(int64_t n, int64_t* begin, int64_t* end) const {
    *begin = n * rank_ / size_;
    *end = n * (rank_ + 1) / size_;
  }

  void sync() {
    if (size_ > 1) shared_->barrier.wait(&sense_);
  }

  int32_t exchange_i32(int32_t* p, int32_t v) const {
    if (size_ == 1) {
      const int32_t old = *p;
      *p = v;
      return old;
    }
    return __atomic_exchange_n(p, v, __ATOMIC_RELAXED);
  }
  uint32_t fetch_or_u32(uint32_t* p, uint32_t v) const {
    if (size_ == 1) {
      const uint32_t old = *p;
      *p |= v;
      return old;
    }
    return __atomic_fetch_or(p, v, __ATOMIC_RELAXED);
  }
  int32_t compare_exchange_i32(int32_t* p, int32_t expected, int32_t desired) const {
    if (size_ == 1) {
      const int32_t old = *p;
      if (old == expected) *p = desired;
      return old;
    }
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return expected;  // the value found: `expected` itself when the swap happened
  }
  int32_t fetch_add_i32(int32_t* p, int32_t v) const {
    if (size_ == 1) {
      const int32_t old = *p;
      *p += v;
      return old;
    }
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  }

  uint64_t sum_u64(uint64_t v) {
    if (size_ == 1) return v;
    shared_->u64[rank_] = v;
    sync();
    uint64_t s = 0;
    for (int r = 0; r < size_; ++r) s += shared_->u64[r];
    sync();
    return s;
  }

  int64_t min_i64(int64_t v) {
    if (size_ == 1) return v;
    shared_->tokens[rank_] = v;
    sync();
    int64_t m = v;
    for (int r = 0; r < size_; ++r) m = min_of(m, shared_->tokens[r]);
    sync();
    return m;
  }

  void argmax(uint32_t* key, int64_t* token) {
    if (size_ == 1) return;
    shared_->keys[rank_] = *key;
    shared_->tokens[rank_] = *token;
    sync();
    for (int r = 0; r < size_; ++r) {
      const uint32_t k = shared_->keys[r];
      const int64_t t = shared_->tokens[r];
      if (t != INT64_MAX && (k > *key || (k == *key && t < *token) || *token == INT64_MAX)) {
        *key = k;
        *token = t;
      }
    }
    sync();
  }

  uint64_t exclusive_scan_u64(uint64_t v, uint64_t* total) {
    if (size_ == 1) {
      *total = v;
      return 0;
    }
    shared_->u64[rank_] = v;
    sync();
    uint64_t before = 0, all = 0;
    for (int r = 0; r < size_; ++r) {
      if (r < rank_) before += shared_->u64[r];
      all += shared_->u64[r];
    }
    sync();
    *total = all;
    return before;
  }

  uint64_t* hist_begin(int bins) {
    std::memset(buf_->hist, 0, sizeof(uint64_t) * bins);
    return buf_->hist;
  }
  static void hist_add(uint64_t* h, int bin, uint64_t w) { h[bin] += w; }
  // The positions are listed eight at a time first (simd_list_below.h): a compare and a
  // branch per element would cost as much as the work most elements skip.
  template <class Visit>
  static FS_INLINE void for_each_below(const float* values, int n, float bound,
                                      const Visit& visit) {
    int listed[kChunk + 8];
    for (int start = 0; start < n; start += kChunk) {
      const int count = list_below(values + start, min_of(n - start, kChunk), bound, listed);
      for (int t = 0; t < count; ++t) visit(start + listed[t]);
    }
  }
  const uint64_t* hist_end(uint64_t* h, int bins) {
    if (size_ == 1) return h;
    shared_->hists[rank_] = h;
    sync();
    int64_t b0, b1;
    segment(bins, &b0, &b1);
    for (int64_t b = b0; b < b1; ++b) {
      uint64_t s = 0;
      for (int r = 0; r < size_; ++r) s += shared_->hists[r][b];
      shared_->merged[b] = s;
    }
    sync();
    return shared_->merged;
  }

  template <class View, class Visit>
  void for_each_chunk(const View& view, const Visit& visit) {
    int64_t b, e;
    segment(view.size(), &b, &e);
    uint32_t keys[kChunk];
    for (int64_t i = b; i < e; i += kChunk) {
      const int n = int(min_of<int64_t>(kChunk, e - i));
      visit(chunk_keys(view, i, n, keys), i, n);
      prefetch_ahead();
    }
  }

  // Memory the worker will read next (its next row): for_each_chunk passes, which compute far
  // more than they read, pull it toward the cache a few lines per chunk, so that the next row's
  // first pass does not wait on memory.
  void set_read_ahead(const void* p, int64_t bytes) {
    ahead_ = static_cast<const char*>(p);
    ahead_end_ = ahead_ + bytes;
  }
  template <class Visit>
  void for_each_chunk(const ListView& view, const Visit& visit) {
    for_each_chunk(KeysView{view.keys, view.n}, visit);
  }
  template <class Visit>
  void for_each_chunk(const KeysView& view, const Visit& visit) {
    int64_t b, e;
    segment(view.size(), &b, &e);
    for (int64_t i = b; i < e; i += kChunk) {
      visit(view.keys + i, i, int(min_of<int64_t>(kChunk, e - i)));
    }
  }

  // for_each_chunk over groups whose maximum reaches min_key only (runs of consecutive such
  // groups, up to kChunk elements). Work is split by groups, in rank order.
  template <class View, class Visit>
  void for_each_chunk_at_least(const View& view, const uint32_t* gmax, uint32_t min_key,
                               const Visit& visit) {
    constexpr int kRun = kChunk / kGroup;
    const int64_t n = view.size();
    int64_t g0, g1;
    segment(num_groups(n), &g0, &g1);
    uint32_t keys[kChunk];
    for (int64_t g = g0; g < g1;) {
      if (gmax[g] < min_key) {
        ++g;
        continue;
      }
      int64_t end = g + 1;
      while (end < g1 && end - g < kRun && gmax[end] >= min_key) ++end;
      const int64_t first = g * kGroup;
      const int m = int(min_of<int64_t>(end * kGroup, n) - first);
      visit(chunk_keys(view, first, m, keys), first, m);
      g = end;
    }
  }

  template <DType D>
  void group_max(const RowView<D>& view, uint32_t* gmax) {
    // Full groups straight from the logits (simd_group_max.h); a last partial group by keys.
    const int64_t groups = num_groups(view.size());
    int64_t g0, g1;
    segment(groups, &g0, &g1);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t first = g * kGroup;
      gmax[g] = first + kGroup <= view.size() ? group_max_key<D>(view.data + first)
                                              : keys_max(view, first, view.size());
    }
    sync();
  }
  template <DType D>
  void group_max(const PatchedView<D>& view, uint32_t* gmax) {
    // The maxima list_patches could tell from the raw ones (row_edits.h); the others by keys.
    const int64_t groups = num_groups(view.size());
    int64_t g0, g1;
    segment(groups, &g0, &g1);
    uint32_t keys[kGroup];
    for (int64_t g = g0; g < g1; ++g) {
      if (view.gmax_hint[g] != 0) {
        gmax[g] = view.gmax_hint[g];
        continue;
      }
      const int64_t first = g * kGroup;
      const int m = int(min_of<int64_t>(kGroup, view.size() - first));
      load_keys(view, first, m, keys);
      gmax[g] = keys_max(KeysView{keys, m}, 0, m);
    }
    sync();
  }
  template <DType D>
  void group_max(const DenseView<D>& view, uint32_t* gmax) {
    // Groups no edit may have changed keep the raw maxima (unless a dense mask cleared keys).
    const int64_t n = view.size();
    int64_t g0, g1;
    segment(num_groups(n), &g0, &g1);
    const KeysView keys{view.keys, n};
    for (int64_t g = g0; g < g1; ++g) {
      gmax[g] = view.changed[g] == 0 && !view.dense_mask
                    ? view.raw_gmax[g]
                    : keys_max(keys, g * kGroup, min_of<int64_t>(n, (g + 1) * kGroup));
    }
    sync();
  }
  template <class View>
  void group_max(const View& view, uint32_t* gmax) {
    const int64_t groups = num_groups(view.size());
    int64_t g0, g1;
    segment(groups, &g0, &g1);
    for (int64_t g = g0; g < g1; ++g) {
      gmax[g] = keys_max(view, g * kGroup, min_of<int64_t>(view.size(), (g + 1) * kGroup));
    }
    sync();
  }

  // Edited rows are copied as keys (row_edits_dense.h) when the scratch has room for them: the
  // filters and the draw read such a row in four to six passes (group maxima, the top-p
  // histogram, the boundary bin, the draw's two), and plain keys spare each of them the dtype
  // decode and the merge of a patch list into every chunk. The copy costs one pass, fused with
  // the raw group maxima. Without scratch.dense_keys (FASTSAMPLE_CPU_EDITED_ROWS=patched, which
  // the tests use to run the PatchedView path the CUDA kernels take) rows are read through
  // their patches.
  static constexpr bool kDenseEdits = true;
  template <DType D>
  void keys_and_group_max(const RowView<D>& raw, uint32_t* keys, uint32_t* gmax) {
    const int64_t n = raw.size();
    int64_t g0, g1;
    segment(num_groups(n), &g0, &g1);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t first = g * kGroup;
      const int m = int(min_of<int64_t>(kGroup, n - first));
      uint32_t best = 0;
      for (int j = 0; j < m; ++j) {
        const uint32_t k = raw.key(first + j);
        keys[first + j] = k;
        best = k > best ? k : best;
      }
      gmax[g] = best;
    }
    sync();
  }

  template <class View, class Pred>
  int64_t compact(const View& view, uint32_t min_key, const Pred& keep, uint32_t* out_keys,
                  int32_t* out_tokens, int64_t cap, const uint32_t* gmax) {
    // A worker writes straight to the output when alone; a team collects locally, then copies
    // in rank order so the list stays in token order. Work is split by groups of kGroup.
    const int64_t n = view.size();
    int64_t g0, g1;
    segment(num_groups(n), &g0, &g1);
    const bool direct = size_ == 1;
    uint32_t* keys_dst = out_keys;
    int32_t* tok_dst = out_tokens;
    if (!direct) {
      const size_t need = size_t(min_of<int64_t>((g1 - g0) * kGroup, cap));
      keys_dst = buf_->local_keys.at_least(need);
      tok_dst = buf_->local_tokens.at_least(need);
    }
    int64_t count = 0;
    uint32_t keys[kGroup];
    alignas(8) uint8_t kept[kGroup];
    // With gmax, the groups read are scattered over the row: each one's load is started a
    // group ahead, while the previous one is being compacted.
    const auto next_group = [&](int64_t g) {
      while (gmax != nullptr && g < g1 && gmax[g] < min_key) ++g;
      if (g < g1) prefetch_group(view, g * kGroup);
      return g;
    };
    int64_t ahead = next_group(g0);
    for (int64_t g = ahead; g < g1; g = ahead) {
      ahead = next_group(g + 1);
      const int64_t first = g * kGroup;
      const int m = int(min_of<int64_t>(kGroup, n - first));
      // Full groups with a constant trip count: the loop unrolls into straight vector code.
      const int hits = m == kGroup ? load_group<kGroup>(view, first, m, min_key, keep, keys, kept)
                                   : load_group<0>(view, first, m, min_key, keep, keys, kept);
      if (hits == 0) continue;
      if (count + m <= cap && hits * 4 > m) {
        // Many kept: store every element, advance past the kept ones (a branch per element
        // would mispredict).
        for (int j = 0; j < m; ++j) {
          keys_dst[count] = keys[j];
          tok_dst[count] = int32_t(view.token(first + j));
          count += kept[j];
        }
        continue;
      }
      // Few kept (a candidate group usually holds one or two): visit only them, eight flags
      // at a time, in order.
      for (int j = m; j < kGroup; ++j) kept[j] = 0;
      for (int w = 0; w < m; w += 8) {
        uint64_t word;
        std::memcpy(&word, kept + w, sizeof(word));
        for (; word != 0; word &= word - 1) {
          const int j = w + __builtin_ctzll(word) / 8;
          if (count < cap) {
            keys_dst[count] = keys[j];
            tok_dst[count] = int32_t(view.token(first + j));
          }
          ++count;
        }
      }
    }
    if (direct) return count;
    uint64_t total = 0;
    const int64_t before = int64_t(exclusive_scan_u64(uint64_t(count), &total));
    const int64_t room = cap - before;
    const int64_t n_copy = room <= 0 ? 0 : min_of(min_of(count, cap), room);
    if (n_copy > 0) {
      std::memcpy(out_keys + before, keys_dst, sizeof(uint32_t) * n_copy);
      std::memcpy(out_tokens + before, tok_dst, sizeof(int32_t) * n_copy);
    }
    sync();
    return int64_t(total);
  }

 private:
  // Lines per chunk: a 1 KB float32 chunk pulls 1 KB of the next row.
  static constexpr int kAheadLines = 16;
  FS_INLINE void prefetch_ahead() {
    for (int l = 0; l < kAheadLines && ahead_ < ahead_end_; ++l, ahead_ += 64) {
      __builtin_prefetch(ahead_, 0, 2);
    }
  }

  int rank_, size_;
  TeamShared* shared_;
  WorkerBuffers* buf_;
  const char* ahead_ = nullptr;
  const char* ahead_end_ = nullptr;
  bool sense_ = false;
};

static_assert(is_exec_context<CpuCtx>(), "CpuCtx keeps the contract of exec_context.h");

FS_CODE_END
}  // namespace fastsample::cpu
