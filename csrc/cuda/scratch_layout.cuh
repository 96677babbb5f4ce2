// Where one block's RowScratch lives inside its share of the workspace (16-byte aligned parts).
// The stage 1-3 buffers (patches and their bitsets, marks, raw group maxima) exist only when a
// call has edits. Host code sizes the workspace with it; the block carves its share with it.
#pragma once
#include <cstdint>

#include "fastsample/row_sampler.h"

namespace fastsample::cuda {

struct ScratchLayout {
  int64_t group_max, cand_keys, cand_tokens, bin_keys, bin_tokens, patch, edited, list_tokens,
      list_keys, list_raw_keys, list_counts, group_start, allowed, seen, counted, marks,
      max_patched, raw_group_max, bytes, list_cap;
  bool edits;

  __host__ __device__ ScratchLayout(int64_t vocab, bool with_edits, int64_t patches)
      : edits(with_edits) {
    const auto round16 = [](int64_t b) { return (b + 15) / 16 * 16; };
    group_max = 0;
    cand_keys = group_max + round16(4 * num_groups(vocab));
    cand_tokens = cand_keys + round16(4 * int64_t(kFastListCap));
    bin_keys = cand_tokens + round16(4 * int64_t(kFastListCap));
    bin_tokens = bin_keys + round16(4 * int64_t(kBinListCap));
    const int64_t bits = edits ? round16(4 * num_words(vocab)) : 0;
    patch = bin_tokens + round16(4 * int64_t(kBinListCap));
    edited = patch + (edits ? round16(4 * vocab) : 0);
    const int64_t per_group = edits ? round16(4 * (num_groups(vocab) + 1)) : 0;
    const int64_t listed = edits ? round16(4 * patches) : 0;
    list_cap = edits ? patches : 0;
    list_tokens = edited + bits;
    list_keys = list_tokens + listed;
    list_raw_keys = list_keys + listed;
    list_counts = list_raw_keys + listed;
    group_start = list_counts + listed;
    allowed = group_start + per_group;
    seen = allowed + bits;
    counted = seen + bits;
    marks = counted + bits;
    max_patched = marks + (edits ? round16(4 * (vocab + 1)) : 0);
    raw_group_max = max_patched + per_group;
    bytes = raw_group_max + (edits ? round16(4 * num_groups(vocab)) : 0);
  }

  __device__ RowScratch at(unsigned char* base) const {
    RowScratch s{reinterpret_cast<uint32_t*>(base + group_max),
                 reinterpret_cast<uint32_t*>(base + cand_keys),
                 reinterpret_cast<int32_t*>(base + cand_tokens),
                 reinterpret_cast<uint32_t*>(base + bin_keys),
                 reinterpret_cast<int32_t*>(base + bin_tokens), kBinListCap,
                 nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr,
                 nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
    if (edits) {
      s.patch = reinterpret_cast<uint32_t*>(base + patch);
      s.edited = reinterpret_cast<uint32_t*>(base + edited);
      s.list_tokens = reinterpret_cast<int32_t*>(base + list_tokens);
      s.list_keys = reinterpret_cast<uint32_t*>(base + list_keys);
      s.list_raw_keys = reinterpret_cast<uint32_t*>(base + list_raw_keys);
      s.list_cap = list_cap;
      s.list_counts = reinterpret_cast<int32_t*>(base + list_counts);
      s.group_start = reinterpret_cast<int32_t*>(base + group_start);
      s.allowed = reinterpret_cast<uint32_t*>(base + allowed);
      s.seen = reinterpret_cast<uint32_t*>(base + seen);
      s.counted = reinterpret_cast<uint32_t*>(base + counted);
      s.marks = reinterpret_cast<int32_t*>(base + marks);
      s.max_patched = reinterpret_cast<uint32_t*>(base + max_patched);
      s.raw_group_max = reinterpret_cast<uint32_t*>(base + raw_group_max);
    }
    return s;
  }
};

}  // namespace fastsample::cuda
