// The execution-context contract the row algorithms are written against (DESIGN.md, choice 1).
//
// A context is a group of `size()` workers that process one row together; `rank()` is this
// worker's place in the group. Every algorithm in this folder runs the same code on each worker;
// only these primitives differ between backends (serial or threaded CPU, a CUDA block):
//
//   static constexpr int kChunk                 largest chunk for_each_chunk hands over
//   int64_t rank() const, size() const
//   Ctx-like solo() const; RowScratch solo_scratch(const RowScratch&) const
//       a context (and scratch) for short lists (at most kFastListCap elements, or the group
//       maxima): every worker may run the same work on it without communicating, or it may be
//       this context itself. Its bin buffers hold kFastListCap elements.
//   void segment(int64_t n, int64_t* begin, int64_t* end) const   contiguous share of [0, n)
//   void sync()                                  every worker's memory writes so far are
//                                                visible to every worker after it
//   int32_t exchange_i32(int32_t* p, int32_t v) / fetch_add_i32(int32_t* p, int32_t v)
//   uint32_t fetch_or_u32(uint32_t* p, uint32_t v)
//   int32_t compare_exchange_i32(int32_t* p, int32_t expected, int32_t desired)
//                                                atomic among the group's workers; return the old value
//   uint64_t sum_u64(uint64_t)                 group-wide sum, result on every worker
//   void argmax(uint32_t* key, int64_t* token)  max key; lowest token among equal keys
//   uint64_t exclusive_scan_u64(uint64_t v, uint64_t* total)      prefix over ranks in order
//   int64_t min_i64(int64_t)
//   uint64_t* hist_begin(int bins)              zeroed worker-local histogram
//   void hist_add(uint64_t* h, int bin, uint64_t w)
//   const uint64_t* hist_end(uint64_t* h, int bins)   merged histogram, visible to every worker
//   template <class Visit> void for_each_below(const float* values, int n, float bound, Visit)
//       visit(j) for each j < n with values[j] < bound, in order
//   template <class View> void group_max(const View&, uint32_t* gmax)
//       gmax[g] = max key of elements [g * kGroup, (g + 1) * kGroup); all groups written and
//       visible to every worker on return.
//   template <class View, class Pred>
//   int64_t compact(const View&, uint32_t min_key, Pred keep, uint32_t* keys, int32_t* tokens,
//                   int64_t cap, const uint32_t* gmax)
//       stores the elements with key >= min_key and keep(key) in view order (at most cap) and
//       returns how many there were in all, visible to every worker. gmax (may be null) is the
//       view's group_max; with it, groups whose max is below min_key need not be read.
//   template <class View, class Visit>
//   void for_each_chunk_at_least(const View&, const uint32_t* gmax, uint32_t min_key, Visit)
//       as for_each_chunk, but chunks inside groups whose gmax is below min_key may be left out
//       (and the split between workers may differ from for_each_chunk's: use it for every pass
//       whose per-worker results are combined in rank order)
//   static constexpr bool kDenseEdits
//       true: edited rows are copied as keys (row_edits_dense.h) when scratch.dense_keys is
//       set, and the context provides
//       template <DType D> void keys_and_group_max(const RowView<D>&, uint32_t* keys,
//                                                 uint32_t* gmax)
//           every key of the row and its group maxima, visible to every worker on return;
//       false: edited rows are read through their patches (row_edits.h, PatchedView).
//   template <class View, class Visit> void for_each_chunk(const View&, Visit)
//       visit(const uint32_t* keys, int64_t first, int count) over this worker's segment, in
//       order, a chunk at a time: element first + j has key keys[j]. Algorithms write their
//       per-element work as plain loops over a chunk, which the CPU backend vectorizes.
//
// Every result a worker uses to make a decision is identical on all workers, and all
// arithmetic that feeds a decision is integer or per-element, so the outcome never depends on
// the group size.
#pragma once
