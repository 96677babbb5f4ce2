// Runs the CUDA block code of csrc/cuda on the host, so CI (which has no GPU) executes it.
//
// One block is kBlockThreads host threads and a launch runs all its blocks at once, each with its
// own garbage-filled shared storage. The device built-ins the block code uses are host functions
// with the GPU's contract, checked:
//   - __syncthreads() is a barrier that fails the launch when the threads of a block wait at
//     different source lines or when one thread has returned while others wait (it would never
//     arrive): divergent barriers hang or corrupt a GPU.
//   - warp shuffles, ballots and reductions exchange values through a per-warp slot array with
//     the same checks, so a lane that skips a warp collective is caught as well.
//   - atomics are host atomics; __CUDA_ARCH__ is 900, so the shared headers take their device
//     branches (__clz, __ffs, __umul64hi, __reduce_max_sync, ...), implemented here.
// A failure throws EmulationError in every thread of the launch; the launch returns its text.
// What this proves and what it cannot (memory model, timing, real CUB) is in docs/design.md.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#define __CUDA_ARCH__ 900
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace fs_emu {

struct EmulationError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Threads are told apart by where they wait: the source location of the built-in call
// ("__syncthreads at file:line"). Return addresses would tell apart the callers of one BlockCtx
// member, but an optimizer that duplicates a loop gives one source call two addresses.

// A barrier for `expected` threads that checks they all arrive from one call site.
class CheckedBarrier {
 public:
  CheckedBarrier(int expected, std::string name) : expected_(expected), name_(std::move(name)) {}

  void arrive_and_wait(const char* where) {
    std::unique_lock<std::mutex> lock(m_);
    if (failed_) throw EmulationError(error_);
    if (exited_ > 0) fail(name_ + ": a thread waits at " + where + " after " +
                          std::to_string(exited_) + " thread(s) returned");
    if (arrived_ == 0) {
      where_ = where;
    } else if (std::strcmp(where_, where) != 0) {
      fail(name_ + ": threads wait at different call sites (" + where_ + " and " + where + ")");
    }
    if (++arrived_ == expected_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    const uint64_t gen = generation_;
    const bool done = cv_.wait_for(lock, std::chrono::seconds(300),
                                   [&] { return generation_ != gen || failed_; });
    if (failed_) throw EmulationError(error_);
    if (!done) {
      fail(name_ + ": " + std::to_string(arrived_) + " of " + std::to_string(expected_) +
           " threads waited 300 s at " + where + " (a thread never arrives)");
    }
  }

  // A thread returned from the kernel: nobody may be waiting for it.
  void exit() {
    std::unique_lock<std::mutex> lock(m_);
    ++exited_;
    if (arrived_ > 0 && !failed_) {
      fail_quietly(name_ + ": a thread returned while " + std::to_string(arrived_) +
                   " wait at " + where_);
    }
  }

  // Another thread failed: release everyone waiting here.
  void abort(const std::string& why) {
    std::unique_lock<std::mutex> lock(m_);
    if (!failed_) fail_quietly(why);
  }

 private:
  // Called with m_ held.
  [[noreturn]] void fail(const std::string& why) {
    fail_quietly(why);
    throw EmulationError(why);
  }
  void fail_quietly(const std::string& why) {
    failed_ = true;
    error_ = why;
    cv_.notify_all();
  }

  std::mutex m_;
  std::condition_variable cv_;
  const int expected_;
  const std::string name_;
  int arrived_ = 0, exited_ = 0;
  uint64_t generation_ = 0;
  bool failed_ = false;
  std::string error_;
  const char* where_ = "";
};

// One warp's exchange: a barrier for its 32 lanes and a slot per lane.
struct Warp {
  explicit Warp(std::string name) : barrier(32, std::move(name)) {}
  CheckedBarrier barrier;
  uint64_t slots[32] = {};
};

struct Block {
  Block(int threads, int index)
      : barrier(threads, "block " + std::to_string(index) + " __syncthreads") {
    for (int w = 0; w < threads / 32; ++w) {
      warps.emplace_back(std::make_unique<Warp>("block " + std::to_string(index) + " warp " +
                                                std::to_string(w)));
    }
  }
  CheckedBarrier barrier;
  std::vector<std::unique_ptr<Warp>> warps;
};

inline thread_local Block* current_block = nullptr;

inline Warp& current_warp() { return *current_block->warps[threadIdx.x / 32]; }
inline unsigned lane() { return threadIdx.x % 32; }

inline void check_full_mask(unsigned mask, const char* what) {
  // Every warp collective in csrc/cuda is taken by all 32 lanes.
  if (mask != 0xffffffffu) throw EmulationError(std::string(what) + " with a partial mask");
}

// All lanes publish `v`, then each reads the whole warp's values through `read`.
template <class Read>
inline auto warp_exchange(uint64_t v, const char* what, const Read& read) {
  Warp& w = current_warp();
  w.slots[lane()] = v;
  w.barrier.arrive_and_wait(what);
  const auto out = read(w.slots);
  w.barrier.arrive_and_wait(what);  // nobody overwrites a slot before everyone has read it
  return out;
}

// Bytes that are not zero and not a pattern code could rely on (xorshift).
inline void fill_garbage(void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<unsigned char*>(p);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = static_cast<unsigned char>(x >> 24);
  }
}

// Runs `body(shared)` on blocks x threads host threads, every block at once, each block with its
// own Shared filled with garbage. Returns "" or the first failure.
template <class Shared, class Body>
std::string launch(int64_t blocks, int threads, uint64_t garbage_seed, const Body& body) {
  std::vector<std::unique_ptr<Block>> state;
  std::vector<std::unique_ptr<Shared>> shared;
  for (int64_t b = 0; b < blocks; ++b) {
    state.emplace_back(std::make_unique<Block>(threads, int(b)));
    shared.emplace_back(std::make_unique<Shared>());
    fill_garbage(shared.back().get(), sizeof(Shared), garbage_seed + uint64_t(b));
  }
  std::mutex m;
  std::string first_error;
  const auto record = [&](const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(m);
      if (first_error.empty()) first_error = why;
    }
    for (auto& blk : state) {
      blk->barrier.abort(why);
      for (auto& w : blk->warps) w->barrier.abort(why);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(blocks) * threads);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, b, t] {
        threadIdx = dim3{unsigned(t), 0, 0};
        blockIdx = dim3{unsigned(b), 0, 0};
        blockDim = dim3{unsigned(threads), 1, 1};
        gridDim = dim3{unsigned(blocks), 1, 1};
        current_block = state[b].get();
        try {
          body(shared[b].get());
          current_block->barrier.exit();
          for (auto& w : current_block->warps) w->barrier.exit();
        } catch (const EmulationError& e) {
          record(e.what());
        } catch (const std::exception& e) {
          record(std::string("block code threw: ") + e.what());
        }
      });
    }
  }
  for (auto& th : pool) th.join();
  return first_error;
}

}  // namespace fs_emu

// ---- device built-ins ----

#define FS_EMU_STR_(x) #x
#define FS_EMU_STR(x) FS_EMU_STR_(x)
#define FS_EMU_HERE(name) name " at " __FILE__ ":" FS_EMU_STR(__LINE__)

inline void fs_emu_syncthreads(const char* where) {
  fs_emu::current_block->barrier.arrive_and_wait(where);
}
#define __syncthreads() fs_emu_syncthreads(FS_EMU_HERE("__syncthreads"))

inline unsigned fs_emu_ballot(unsigned mask, int pred, const char* where) {
  fs_emu::check_full_mask(mask, "__ballot_sync");
  return fs_emu::warp_exchange(pred != 0, where, [](const uint64_t* s) {
    unsigned bits = 0;
    for (int l = 0; l < 32; ++l) bits |= unsigned(s[l] != 0) << l;
    return bits;
  });
}

template <class T>
inline T fs_emu_shuffle(unsigned mask, T v, unsigned from_lane_xor, bool is_xor,
                        const char* what) {
  static_assert(sizeof(T) <= 8, "shuffles move up to 8 bytes");
  fs_emu::check_full_mask(mask, what);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  const unsigned src = is_xor ? (fs_emu::lane() ^ from_lane_xor) % 32 : from_lane_xor % 32;
  const uint64_t got = fs_emu::warp_exchange(bits, what, [&](const uint64_t* s) { return s[src]; });
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}
#define __ballot_sync(mask, pred) fs_emu_ballot(mask, pred, FS_EMU_HERE("__ballot_sync"))
#define __shfl_sync(mask, v, lane) \
  fs_emu_shuffle(mask, v, unsigned(lane), false, FS_EMU_HERE("__shfl_sync"))
#define __shfl_xor_sync(mask, v, lane_mask) \
  fs_emu_shuffle(mask, v, unsigned(lane_mask), true, FS_EMU_HERE("__shfl_xor_sync"))

inline unsigned fs_emu_reduce_max(unsigned mask, unsigned v, const char* where) {
  fs_emu::check_full_mask(mask, "__reduce_max_sync");
  return fs_emu::warp_exchange(v, where, [](const uint64_t* s) {
    uint64_t m = 0;
    for (int l = 0; l < 32; ++l) m = s[l] > m ? s[l] : m;
    return unsigned(m);
  });
}
#define __reduce_max_sync(mask, v) fs_emu_reduce_max(mask, v, FS_EMU_HERE("__reduce_max_sync"))

template <class T>
inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
template <class T>
inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
template <class T>
inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
template <class T>
inline T atomicMax(T* p, T v) {
  T held = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (held < v && !__atomic_compare_exchange_n(p, &held, v, false, __ATOMIC_RELAXED,
                                                  __ATOMIC_RELAXED)) {
  }
  return held;
}
template <class T>
inline T atomicCAS(T* p, T expected, T desired) {
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return expected;
}

// The device integer intrinsics, defined as the CUDA math API documents them.
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : __builtin_ctz(unsigned(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : __builtin_ctzll((unsigned long long)x) + 1;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)((unsigned __int128)a * b >> 64);
}
