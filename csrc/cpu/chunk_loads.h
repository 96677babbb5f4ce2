// Reading a row view on the CPU, a chunk or a group at a time: keys decoded with plain loops
// the compiler vectorizes, patched rows merged chunk by chunk, and prefetches of the groups a
// pass will read next. The CPU context's passes (cpu_context.h) use these, as the CUDA block
// context uses csrc/cuda/chunk_loads.cuh.
#pragma once
#include <cstdint>

#include "fastsample/common.h"
#include "fastsample/views.h"

namespace fastsample::cpu {
FS_CODE_BEGIN

// Keys of elements [first, first + m): a plain loop the compiler vectorizes, then, for a
// patched row, the few patched keys and the dense mask.
template <class View>
FS_INLINE void load_keys(const View& view, int64_t first, int m, uint32_t* keys) {
  for (int j = 0; j < m; ++j) keys[j] = view.key(first + j);
}
template <DType D>
FS_INLINE void load_keys(const PatchedView<D>& view, int64_t first, int m, uint32_t* keys) {
  load_keys(view.raw, first, m, keys);
  // The run of the patch list that covers the chunk's groups; a chunk that starts or ends
  // inside a group skips that group's patches outside it.
  const int32_t begin = view.group_start[first / kGroup];
  const int32_t end = view.group_start[(first + m - 1) / kGroup + 1];
  for (int32_t i = begin; i < end; ++i) {
    const uint64_t j = uint64_t(view.list_tokens[i] - first);
    if (j < uint64_t(m)) keys[j] = view.list_keys[i];
  }
  if (view.allowed != nullptr) {
    for (int j = 0; j < m; ++j) {
      keys[j] = bit_is_set(view.allowed, first + j) ? keys[j] : kNegInfKey;
    }
  }
}

// A chunk's keys: decoded into `buf`, or where they lie when the view holds keys.
template <class View>
FS_INLINE const uint32_t* chunk_keys(const View& view, int64_t first, int m, uint32_t* buf) {
  load_keys(view, first, m, buf);
  return buf;
}
template <DType D>
FS_INLINE const uint32_t* chunk_keys(const DenseView<D>& view, int64_t first, int, uint32_t*) {
  return view.keys + first;
}

// Keys of elements [first, first + m) and whether each is kept; returns how many are.
// kM > 0: m == kM.
template <int kM, class View, class Pred>
FS_INLINE int load_group(const View& view, int64_t first, int m, uint32_t min_key,
                         const Pred& keep, uint32_t* keys, uint8_t* kept) {
  const int len = kM > 0 ? kM : m;
  load_keys(view, first, len, keys);
  // Non-short-circuit and a local copy of the predicate: the flags are bytes, which may alias
  // anything the predicate reads, and a branch per element would mispredict.
  const Pred pred = keep;
  int hits = 0;
  for (int j = 0; j < len; ++j) {
    const int in = int(keys[j] >= min_key) & int(pred(keys[j]));
    kept[j] = uint8_t(in);
    hits += in;
  }
  return hits;
}

template <class View>
inline uint32_t keys_max(const View& view, int64_t begin, int64_t end) {
  uint32_t best = 0;
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t k = view.key(i);
    best = k > best ? k : best;
  }
  return best;
}

// The lines of the group starting at `first`, for a pass that reads it next.
template <DType D>
FS_INLINE void prefetch_group(const RowView<D>& view, int64_t first) {
  constexpr int kLine = 64;
  const char* p = reinterpret_cast<const char*>(view.data + first);
  for (int b = 0; b < int(sizeof(*view.data)) * kGroup; b += kLine) __builtin_prefetch(p + b);
}
template <DType D>
FS_INLINE void prefetch_group(const PatchedView<D>& view, int64_t first) {
  prefetch_group(view.raw, first);
}
template <DType D>
FS_INLINE void prefetch_group(const DenseView<D>& view, int64_t first) {
  constexpr int kLine = 64;
  const char* p = reinterpret_cast<const char*>(view.keys + first);
  for (int b = 0; b < int(sizeof(uint32_t)) * kGroup; b += kLine) __builtin_prefetch(p + b);
}
template <class View>
FS_INLINE void prefetch_group(const View&, int64_t) {}

FS_CODE_END
}  // namespace fastsample::cpu
