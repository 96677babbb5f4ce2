// Loading a chunk of eight sanitized keys: 16-byte vector loads from a logits row when the row
// is 16-byte aligned (BlockCtx::segment keeps chunk starts on multiples of eight elements),
// element loads otherwise and for lists.
#pragma once
#include <cstdint>

#include "fastsample/views.h"

namespace fastsample::cuda {

template <class View>
struct ChunkLoader {
  const View& view;
  __device__ explicit ChunkLoader(const View& v) : view(v) {}
  __device__ void chunk(int64_t first, uint32_t* keys) const {
#pragma unroll
    for (int j = 0; j < 8; ++j) keys[j] = view.key(first + j);
  }
};

template <DType D>
struct ChunkLoader<RowView<D>> {
  using Loader = KeyLoader<D>;
  using Elem = typename Loader::Elem;
  const RowView<D>& view;
  bool aligned;

  __device__ explicit ChunkLoader(const RowView<D>& v)
      : view(v), aligned((reinterpret_cast<uintptr_t>(v.data) & 15u) == 0) {}

  __device__ void chunk(int64_t first, uint32_t* keys) const {
    if (!aligned) {
#pragma unroll
      for (int j = 0; j < 8; ++j) keys[j] = view.key(first + j);
      return;
    }
    // `first` is a multiple of 8, so data + first is 16-byte aligned for both element sizes.
    const uint4* src = reinterpret_cast<const uint4*>(view.data + first);
    if constexpr (sizeof(Elem) == 4) {
      const uint4 a = src[0];
      const uint4 b = src[1];
      const uint32_t words[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int j = 0; j < 8; ++j) keys[j] = Loader::key(words[j]);
    } else {
      const uint4 a = src[0];
      const uint32_t pairs[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        keys[2 * j] = Loader::key(Elem(pairs[j] & 0xffffu));      // little-endian: low half first
        keys[2 * j + 1] = Loader::key(Elem(pairs[j] >> 16));
      }
    }
  }
};

}  // namespace fastsample::cuda
