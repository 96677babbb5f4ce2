// Portability macros and the few constants every backend agrees on.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define FS_HOST_DEVICE __host__ __device__
#define FS_INLINE __forceinline__
#define FS_NOINLINE __noinline__
#else
#define FS_HOST_DEVICE
#define FS_INLINE inline __attribute__((always_inline))
#define FS_NOINLINE __attribute__((noinline))
#endif

// Code compiled once per CPU instruction-set level lives in an inline namespace named after that
// level, so the baseline and AVX2 objects never share (and the linker never swaps) a symbol.
#define FS_CAT_(a, b) a##b
#define FS_CAT(a, b) FS_CAT_(a, b)
#if defined(FS_CPU_ISA)
#define FS_CODE_BEGIN inline namespace FS_CAT(code_, FS_CPU_ISA) {
#define FS_CODE_END }
#else
#define FS_CODE_BEGIN
#define FS_CODE_END
#endif

namespace fastsample {

// Logits dtypes, as passed from Python (codes are part of the binding ABI).
enum class DType : int32_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Probability masses are accumulated as fixed-point integers with this many fractional bits.
// Integer sums are associative, so masses, top-p cut-offs and the inverse-CDF draw do not depend
// on the number of threads, the batch, or the device. V * 2^38 must fit in int64: V < 2^25.
constexpr int kMassFracBits = 38;
constexpr int64_t kMaxVocab = int64_t(1) << 25;

// Radix select works on 11-bit digits of the 32-bit key (11 + 11 + 10).
constexpr int kRadixBits = 11;
constexpr int kRadixBins = 1 << kRadixBits;

// Top-p first locates its boundary in a histogram of d = z_max - z (z units), kMassBinsPerUnit bins
// per unit up to at most kMassHistRange; everything further from the max shares one tail bin.
constexpr int kMassBinsPerUnit = 64;
constexpr int kMassHistRange = 24;
constexpr int kMassBins = kMassBinsPerUnit * kMassHistRange + 1;

// The first pass over a row records the maximum of each group of this many consecutive logits;
// later passes skip groups whose maximum is below what they look for.
constexpr int kGroup = 64;
FS_HOST_DEVICE inline int64_t num_groups(int64_t n) { return (n + kGroup - 1) / kGroup; }

// Small-k fast path: top_k up to this many uses a candidate list instead of a radix pass over V.
constexpr int kFastTopKMax = 1024;
constexpr int kFastListCap = 8192;

// The top-p boundary bin is compacted into a list of at most this many elements; a larger bin
// (heavy ties, flat rows) is resolved by a radix select over the row instead. Every backend uses
// the same cap, so the CPU tests take the same branch the GPU does.
constexpr int kBinListCap = 16384;

// Number of leading zero bits of a nonzero x.
FS_HOST_DEVICE FS_INLINE int leading_zeros(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __clz(x);
#else
  return __builtin_clz(x);
#endif
}

// Number of trailing zero bits of a nonzero x.
FS_HOST_DEVICE FS_INLINE int trailing_zeros(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __ffs(int(x)) - 1;
#else
  return __builtin_ctz(x);
#endif
}

FS_HOST_DEVICE FS_INLINE int popcount(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

FS_HOST_DEVICE FS_INLINE int trailing_zeros64(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __ffsll((long long)x) - 1;
#else
  return __builtin_ctzll(x);
#endif
}

FS_HOST_DEVICE FS_INLINE int popcount64(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

// Bit i of a bitset stored as 32-bit words (token t is bit t % 32 of word t / 32: the layout of
// xgrammar's token bitmask).
FS_HOST_DEVICE FS_INLINE bool bit_is_set(const uint32_t* words, int64_t i) {
  return ((words[i >> 5] >> (i & 31)) & 1u) != 0;
}
FS_HOST_DEVICE FS_INLINE int64_t num_words(int64_t bits) { return (bits + 31) / 32; }

// Starts loading the cache line at p (host only: a GPU hides latency with other warps).
#if defined(__CUDA_ARCH__)
#define FS_PREFETCH(p) ((void)(p))
#else
#define FS_PREFETCH(p) __builtin_prefetch(p)
#endif

// A per-row parameter array or one scalar for the batch (ptr == nullptr).
template <class T>
struct ParamSource {
  T scalar;
  const T* ptr;
  FS_HOST_DEVICE FS_INLINE T at(int64_t row) const { return ptr ? ptr[row] : scalar; }
};

}  // namespace fastsample
