// Host stand-in for cub::BlockReduce (the interface block_context.cuh uses), with CUB's
// contract: the aggregate is defined in thread 0 only (other threads get garbage), and reusing
// TempStorage needs a __syncthreads first (without one, this races as CUB would).
#pragma once
#include "../../../cuda_host_emulation.h"

namespace cub {

template <class T, int kThreads>
class BlockReduce {
 public:
  struct TempStorage {
    T slots[kThreads];
  };
  explicit BlockReduce(TempStorage& storage) : s_(storage) {}

  T Sum(T v) {
    return Reduce(v, [](const T& a, const T& b) { return a + b; });
  }

  template <class Op>
  T Reduce(T v, Op op) {
    s_.slots[threadIdx.x] = v;
    fs_emu::current_block->barrier.arrive_and_wait("cub::BlockReduce");
    if (threadIdx.x != 0) {
      T garbage;
      fs_emu::fill_garbage(&garbage, sizeof(T), threadIdx.x);
      return garbage;
    }
    T acc = s_.slots[0];
    for (int i = 1; i < kThreads; ++i) acc = op(acc, s_.slots[i]);
    return acc;
  }

 private:
  TempStorage& s_;
};

}  // namespace cub
