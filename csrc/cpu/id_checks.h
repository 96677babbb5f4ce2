// Validation of token-id tensors on CPU in one plain pass: torch's own comparison ops would run
// on its thread pool, whose threads keep spinning afterwards and slow the sampling kernel that
// follows on a small machine.
#pragma once
#include <cstdint>

namespace fastsample::cpu {

// Flat index (row * cols + col) of the first id outside [-1, vocab) in a [rows, cols] int64
// array with the given row stride, or -1 when every id is in range.
inline int64_t first_id_out_of_range(const int64_t* ids, int64_t rows, int64_t cols,
                                     int64_t row_stride, int64_t vocab) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t* row = ids + r * row_stride;
    // id + 1 in [0, vocab], as unsigned: its bits above 31 all clear (vocab < 2^31) and its low
    // 32 bits at most vocab. Written so that it vectorizes without 64-bit compares (SSE2).
    uint64_t high = vocab < (int64_t(1) << 31) ? 0 : 1;
    uint32_t over = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const uint64_t u = uint64_t(row[c]) + 1;
      high |= u >> 31;
      over |= uint32_t(int32_t(uint32_t(u)) > int32_t(vocab));
    }
    if (high == 0 && over == 0) continue;
    for (int64_t c = 0; c < cols; ++c) {
      if (row[c] < -1 || row[c] >= vocab) return r * cols + c;
    }
  }
  return -1;
}

}  // namespace fastsample::cpu
