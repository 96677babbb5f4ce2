// Host stand-in for cub::BlockScan::ExclusiveSum with the block aggregate (defined in every
// thread, as in CUB); reusing TempStorage needs a __syncthreads first, as in CUB.
#pragma once
#include "../../../cuda_host_emulation.h"

namespace cub {

template <class T, int kThreads>
class BlockScan {
 public:
  struct TempStorage {
    T slots[kThreads];
  };
  explicit BlockScan(TempStorage& storage) : s_(storage) {}

  void ExclusiveSum(T v, T& before, T& aggregate) {
    s_.slots[threadIdx.x] = v;
    fs_emu::current_block->barrier.arrive_and_wait("cub::BlockScan");
    T sum = T(0);
    for (int i = 0; i < kThreads; ++i) {
      if (i == int(threadIdx.x)) before = sum;
      sum = sum + s_.slots[i];
    }
    aggregate = sum;
  }

 private:
  TempStorage& s_;
};

}  // namespace cub
