// Counter-based randomness: Philox4x32-10 (Salmon et al., SC'11), identical on every backend.
// A row's draw is keyed by its (seed, offset) alone, so it never depends on batch or threads.
#pragma once
#include "fastsample/common.h"

namespace fastsample {
FS_CODE_BEGIN

struct Philox4x32 {
  uint32_t v[4];
};

FS_HOST_DEVICE FS_INLINE void mul_hilo32(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  *lo = uint32_t(p);
}

FS_HOST_DEVICE inline Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hilo32(kM0, ctr.v[0], &hi0, &lo0);
    mul_hilo32(kM1, ctr.v[2], &hi1, &lo1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// A row's Philox block for one step: key = seed, counter = (offset, 0).
FS_HOST_DEVICE inline Philox4x32 row_philox(uint64_t seed, uint64_t offset) {
  return philox4x32_10(Philox4x32{{uint32_t(offset), uint32_t(offset >> 32), 0u, 0u}},
                       uint32_t(seed), uint32_t(seed >> 32));
}

// The 64 random bits a row draws with: the block's words 0 and 1.
FS_HOST_DEVICE inline uint64_t row_random_u64(uint64_t seed, uint64_t offset) {
  const Philox4x32 out = row_philox(seed, offset);
  return (uint64_t(out.v[0]) << 32) | out.v[1];
}

// XTC's coin for the step, uniform in [0, 1): the top 53 bits of the block's words 2 and 3,
// which the draw leaves unused, so the coin and the draw are independent.
FS_HOST_DEVICE inline double row_coin(uint64_t seed, uint64_t offset) {
  const Philox4x32 out = row_philox(seed, offset);
  const uint64_t bits = (uint64_t(out.v[2]) << 32) | out.v[3];
  return double(bits >> 11) * 0x1p-53;
}

// Speculative verification's coin for a node's k-th child, uniform in [0, 1): the top 53 bits
// of words 0 and 1 of the step's block with counter words 2 and 3 set to (1, k), a block the
// draw and XTC's coin never use, so every coin is independent of them and of each other.
FS_HOST_DEVICE inline double row_accept_coin(uint64_t seed, uint64_t offset, uint32_t k) {
  const Philox4x32 out =
      philox4x32_10(Philox4x32{{uint32_t(offset), uint32_t(offset >> 32), 1u, k}},
                    uint32_t(seed), uint32_t(seed >> 32));
  const uint64_t bits = (uint64_t(out.v[0]) << 32) | out.v[1];
  return double(bits >> 11) * 0x1p-53;
}

// floor(r * n / 2^64): a uniform integer in [0, n) from 64 random bits.
FS_HOST_DEVICE FS_INLINE uint64_t scale_u64(uint64_t r, uint64_t n) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, n);
#else
  return uint64_t((unsigned __int128)r * n >> 64);
#endif
}

FS_CODE_END
}  // namespace fastsample
