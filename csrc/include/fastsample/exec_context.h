// The execution-context contract the row algorithms are written against (docs/design.md,
// "One algorithm, two backends"), and its compile-time check.
//
// Overview
//   A context is a group of size() workers that process one row together; rank() is this
//   worker's place in the group. Every algorithm in this folder runs the same code on each
//   worker; only the primitives below differ between backends: CpuCtx (csrc/cpu/cpu_context.h:
//   one thread, or a team of threads sharing a row through a spin barrier) and BlockCtx
//   (csrc/cuda/block_context.cuh: the threads of one CUDA block).
//
//   Every result a worker uses to make a decision is identical on all workers, and all
//   arithmetic that feeds a decision is integer or per-element, so the outcome never depends
//   on the group size. Primitives marked "collective" must be called by every worker of the
//   group, from the same place in the code (they may contain a sync).
//
// Members
//   Identity and work split
//     static constexpr int kChunk          largest chunk for_each_chunk hands over
//     int64_t rank() const, size() const
//     void segment(int64_t n, int64_t* begin, int64_t* end) const
//                                          this worker's contiguous share of [0, n), in rank order
//   Short lists
//     Ctx-like solo() const;  RowScratch solo_scratch(const RowScratch&) const
//         a context (and scratch) for short lists (at most kFastListCap elements, or the group
//         maxima): every worker may run the same work on it without communicating, or it may
//         be this context itself. Its bin buffers hold kFastListCap elements.
//   Memory ordering (collective)
//     void sync()                          every worker's writes so far are visible to every
//                                          worker after it
//   Atomics, among the group's workers; each returns the old value
//     int32_t exchange_i32(int32_t* p, int32_t v), fetch_add_i32(int32_t* p, int32_t v)
//     uint32_t fetch_or_u32(uint32_t* p, uint32_t v)
//     int32_t compare_exchange_i32(int32_t* p, int32_t expected, int32_t desired)
//   Group-wide results (collective; the result on every worker)
//     uint64_t sum_u64(uint64_t)
//     int64_t min_i64(int64_t)
//     void argmax(uint32_t* key, int64_t* token)    max key; lowest token among equal keys
//     uint64_t exclusive_scan_u64(uint64_t v, uint64_t* total)   prefix over ranks in order
//   Histograms (collective begin and end)
//     uint64_t* hist_begin(int bins)       zeroed worker-local histogram
//     void hist_add(uint64_t* h, int bin, uint64_t w)
//     const uint64_t* hist_end(uint64_t* h, int bins)   merged, visible to every worker
//   Element lists (per worker)
//     template <class Visit> void for_each_below(const float* values, int n, float bound, Visit)
//         visit(j) for each j < n with values[j] < bound, in order
//   Passes over a view (collective; View: RowView, PatchedView, DenseView, KeysView, ListView)
//     template <class View, class Visit> void for_each_chunk(const View&, Visit)
//         visit(const uint32_t* keys, int64_t first, int count) over this worker's segment, in
//         order, a chunk at a time: element first + j has key keys[j]. Algorithms write their
//         per-element work as plain loops over a chunk, which the CPU backend vectorizes.
//     template <class View, class Visit>
//     void for_each_chunk_at_least(const View&, const uint32_t* gmax, uint32_t min_key, Visit)
//         as for_each_chunk, but chunks inside groups whose gmax is below min_key may be left
//         out (and the split between workers may differ from for_each_chunk's: use it for
//         every pass whose per-worker results are combined in rank order)
//     template <class View> void group_max(const View&, uint32_t* gmax)
//         gmax[g] = max key of elements [g * kGroup, (g + 1) * kGroup); all groups written and
//         visible to every worker on return
//     template <class View, class Pred>
//     int64_t compact(const View&, uint32_t min_key, Pred keep, uint32_t* keys,
//                     int32_t* tokens, int64_t cap, const uint32_t* gmax)
//         stores the elements with key >= min_key and keep(key) in view order (at most cap)
//         and returns how many there were in all, visible to every worker. gmax (may be null)
//         is the view's group_max; with it, groups whose max is below min_key need not be read.
//   Edited rows
//     static constexpr bool kDenseEdits
//         true: edited rows are copied as keys (row_edits_dense.h) when scratch.dense_keys is
//         set, and the context provides (collective)
//           template <DType D> void keys_and_group_max(const RowView<D>&, uint32_t* keys,
//                                                     uint32_t* gmax)
//           every key of the row and its group maxima, visible to every worker on return;
//         false: edited rows are read through their patches (row_edits.h, PatchedView).
//
// Storage
//   A context owns no row-sized memory: the algorithms pass it the row's RowScratch
//   (scratch_layout.h), shared by the group. Its own storage (the CUDA block's shared memory,
//   a CPU team's TeamShared) holds per-worker values and merged histograms only.
//
// Example: the sum of a row's keys at or above a bound, on any context
//   template <class Ctx, class View>
//   FS_HOST_DEVICE uint64_t mass_above(Ctx& ctx, const View& view, uint32_t bound) {
//     uint64_t local = 0;
//     ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
//       for (int j = 0; j < n; ++j) local += keys[j] >= bound ? keys[j] : 0;
//     });
//     return ctx.sum_u64(local);  // the same total on every worker
//   }
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

#include "fastsample/common.h"
#include "fastsample/views.h"

namespace fastsample {
FS_CODE_BEGIN

namespace exec_context_check {

struct ChunkVisit {
  FS_HOST_DEVICE void operator()(const uint32_t*, int64_t, int) const {}
};
struct IndexVisit {
  FS_HOST_DEVICE void operator()(int) const {}
};
struct KeepAll {
  FS_HOST_DEVICE bool operator()(uint32_t) const { return true; }
};

template <class T, class U>
constexpr bool kSame = std::is_same<T, U>::value;

}  // namespace exec_context_check

// True when Ctx has every member of the contract above with its signature; each missing or
// different member fails its own static_assert, which names it.
template <class Ctx>
constexpr bool is_exec_context() {
  using namespace exec_context_check;
  using Row = RowView<DType::kFloat32>;
  Ctx* c = nullptr;
  const Ctx* cc = nullptr;
  int32_t* i32 = nullptr;
  uint32_t* u32 = nullptr;
  int64_t* i64 = nullptr;
  uint64_t* u64 = nullptr;
  static_assert(kSame<decltype(Ctx::kChunk), const int>, "static constexpr int kChunk");
  static_assert(kSame<decltype(Ctx::kDenseEdits), const bool>, "static constexpr bool kDenseEdits");
  static_assert(kSame<decltype(cc->rank()), int64_t>, "int64_t rank() const");
  static_assert(kSame<decltype(cc->size()), int64_t>, "int64_t size() const");
  static_assert(kSame<decltype(cc->segment(int64_t(), i64, i64)), void>, "segment(n, begin, end)");
  static_assert(kSame<decltype(cc->solo_scratch(std::declval<const RowScratch&>())), RowScratch>,
                "RowScratch solo_scratch(const RowScratch&) const");
  static_assert(kSame<decltype(c->sync()), void>, "void sync()");
  static_assert(kSame<decltype(c->exchange_i32(i32, 0)), int32_t>, "exchange_i32");
  static_assert(kSame<decltype(c->fetch_add_i32(i32, 0)), int32_t>, "fetch_add_i32");
  static_assert(kSame<decltype(c->fetch_or_u32(u32, 0u)), uint32_t>, "fetch_or_u32");
  static_assert(kSame<decltype(c->compare_exchange_i32(i32, 0, 0)), int32_t>,
                "compare_exchange_i32");
  static_assert(kSame<decltype(c->sum_u64(uint64_t())), uint64_t>, "uint64_t sum_u64(uint64_t)");
  static_assert(kSame<decltype(c->min_i64(int64_t())), int64_t>, "int64_t min_i64(int64_t)");
  static_assert(kSame<decltype(c->argmax(u32, i64)), void>, "void argmax(uint32_t*, int64_t*)");
  static_assert(kSame<decltype(c->exclusive_scan_u64(uint64_t(), u64)), uint64_t>,
                "uint64_t exclusive_scan_u64(uint64_t, uint64_t*)");
  static_assert(kSame<decltype(c->hist_begin(0)), uint64_t*>, "uint64_t* hist_begin(int)");
  static_assert(kSame<decltype(c->hist_add(u64, 0, uint64_t())), void>, "hist_add");
  static_assert(kSame<decltype(c->hist_end(u64, 0)), const uint64_t*>,
                "const uint64_t* hist_end(uint64_t*, int)");
  static_assert(kSame<decltype(c->for_each_below(std::declval<const float*>(), 0, 0.0f,
                                                 IndexVisit{})), void>, "for_each_below");
  static_assert(kSame<decltype(c->for_each_chunk(std::declval<const Row&>(), ChunkVisit{})),
                      void>, "for_each_chunk(RowView)");
  static_assert(kSame<decltype(c->for_each_chunk(std::declval<const KeysView&>(), ChunkVisit{})),
                      void>, "for_each_chunk(KeysView)");
  static_assert(kSame<decltype(c->for_each_chunk_at_least(std::declval<const Row&>(),
                                                          std::declval<const uint32_t*>(), 0u,
                                                          ChunkVisit{})), void>,
                "for_each_chunk_at_least");
  static_assert(kSame<decltype(c->group_max(std::declval<const Row&>(), u32)), void>,
                "void group_max(const View&, uint32_t*)");
  static_assert(kSame<decltype(c->compact(std::declval<const Row&>(), 0u, KeepAll{}, u32, i32,
                                          int64_t(), std::declval<const uint32_t*>())),
                      int64_t>, "int64_t compact(view, min_key, keep, keys, tokens, cap, gmax)");
  // solo() returns a context of its own (possibly this one's type) with the same contract.
  using Solo = decltype(cc->solo());
  static_assert(kSame<decltype(std::declval<Solo&>().sum_u64(uint64_t())), uint64_t> &&
                    kSame<decltype(std::declval<Solo&>().rank()), int64_t>,
                "solo() returns a context");
  return true;
}

FS_CODE_END
}  // namespace fastsample
