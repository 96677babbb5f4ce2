// What the row algorithms iterate over: the logits row itself, a compacted candidate list, or
// bare keys. Each gives a sanitized key and the token id of its i-th element.
#pragma once
#include "fastsample/float_key.h"

namespace fastsample {
FS_CODE_BEGIN

template <DType D>
struct RowView {
  using Loader = KeyLoader<D>;
  const typename Loader::Elem* data;
  int64_t n;
  FS_HOST_DEVICE FS_INLINE int64_t size() const { return n; }
  FS_HOST_DEVICE FS_INLINE uint32_t key(int64_t i) const { return Loader::key(data[i]); }
  FS_HOST_DEVICE FS_INLINE int64_t token(int64_t i) const { return i; }
};

// Candidates in ascending token order (the compaction primitives preserve order).
struct ListView {
  const uint32_t* keys;
  const int32_t* tokens;
  int64_t n;
  FS_HOST_DEVICE FS_INLINE int64_t size() const { return n; }
  FS_HOST_DEVICE FS_INLINE uint32_t key(int64_t i) const { return keys[i]; }
  FS_HOST_DEVICE FS_INLINE int64_t token(int64_t i) const { return tokens[i]; }
};

// Keys alone, for selections that need no token (e.g. over per-group maxima).
struct KeysView {
  const uint32_t* keys;
  int64_t n;
  FS_HOST_DEVICE FS_INLINE int64_t size() const { return n; }
  FS_HOST_DEVICE FS_INLINE uint32_t key(int64_t i) const { return keys[i]; }
};

// Scratch a worker group needs for one row; the backend owns the memory.
struct RowScratch {
  uint32_t* group_max;     // num_groups(V) entries
  uint32_t* cand_keys;     // kFastListCap entries
  int32_t* cand_tokens;
  uint32_t* bin_keys;      // bin_cap entries: the top-p boundary bin
  int32_t* bin_tokens;
  int64_t bin_cap;         // kBinListCap, or kFastListCap for a solo context's short lists
  // Rows with stages 1-3 (row_edits.h) only:
  float* edited;           // V entries: the row after stages 0-3
  int32_t* marks;          // V entries, zero between rows
  uint32_t* seen;          // ceil(V / 32) words, zero between rows
  uint32_t* raw_group_max; // num_groups(V) entries: group maxima of the unedited row
};

FS_CODE_END
}  // namespace fastsample
