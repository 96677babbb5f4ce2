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

// A row after stages 0-3 (row_edits.h) without a copy of it: the logits' keys, except for the
// patched tokens (their bit set in `edited`), whose keys are in a list grouped by kGroup-token
// group (group g's at [group_start[g], group_start[g+1]), in no order within it), and except for
// tokens outside `allowed` (when given: an allow-list or a grammar bitmask), which are -inf.
// Edits touch few tokens; the rest of the row is read where it lies, in its own dtype, and a
// chunk's patches are one run of the list.
template <DType D>
struct PatchedView {
  RowView<D> raw;
  const uint32_t* edited;      // V bits
  const uint32_t* allowed;     // V bits, or null: no dense mask
  const uint32_t* raw_gmax;    // the logits' group maxima (ctx.group_max of raw)
  const int32_t* list_tokens;  // the patched tokens, by group
  const uint32_t* list_keys;   // their keys
  const int32_t* group_start;  // num_groups(V) + 1 entries
  // Group maxima known from the raw ones and the patches, 0 where a group must be read (a
  // backend's group_max may start from it; keys are never 0).
  const uint32_t* gmax_hint;
  FS_HOST_DEVICE FS_INLINE int64_t size() const { return raw.n; }
  FS_HOST_DEVICE FS_INLINE uint32_t key(int64_t i) const {
    uint32_t k = raw.key(i);
    if (bit_is_set(edited, i)) {
      const int64_t g = i / kGroup;
      for (int32_t j = group_start[g]; j < group_start[g + 1]; ++j) {
        if (list_tokens[j] == i) k = list_keys[j];
      }
    }
    return allowed == nullptr || bit_is_set(allowed, i) ? k : kNegInfKey;
  }
  FS_HOST_DEVICE FS_INLINE int64_t token(int64_t i) const { return i; }
};

// A row after stages 0-3 as a copy of its keys (row_edits_dense.h), for backends that keep one
// (exec_context.h, kDenseEdits). Groups not flagged in `changed` keep the raw group maxima.
template <DType D>
struct DenseView {
  RowView<D> raw;
  const uint32_t* keys;      // V keys
  const uint32_t* changed;   // num_groups(V) flags: an edit may have changed the group's max
  const uint32_t* raw_gmax;  // the logits' group maxima
  bool dense_mask;           // an allow-list or grammar bitmask cleared keys: every group changed
  int64_t recorded;          // entries of the edit record (row_edits_dense.h), or -1: none
  FS_HOST_DEVICE FS_INLINE int64_t size() const { return raw.n; }
  FS_HOST_DEVICE FS_INLINE uint32_t key(int64_t i) const { return keys[i]; }
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
  FS_HOST_DEVICE FS_INLINE int64_t token(int64_t i) const { return i; }  // the position
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
  uint32_t* edited;        // num_words(V) words: which tokens have a stage 1-2 key in the slots
  int32_t* list_tokens;    // one entry per patched token: the patched tokens by group (PatchedView)
  uint32_t* list_keys;     // their keys
  uint32_t* list_raw_keys; // their raw keys
  int64_t list_cap;        // entries of the three list_* arrays (at least min(V, listed ids))
  int32_t* list_counts;    // their output counts while stage 3 is applied (row_edits.h)
  int32_t* group_start;    // num_groups(V) + 1 entries
  uint32_t* allowed;       // num_words(V) words: the allow-list (and grammar bitmask) as bits
  uint32_t* seen;          // num_words(V) words: the tokens stage 3 reaches
  uint32_t* counted;       // num_words(V) words: the tokens with stage 3 inputs (output counts,
                           // DRY repeats: in slots / marks)
  int32_t* marks;          // dense edits only: V + 1 output counts, zero between rows
  int32_t* repeats;        // dense edits only: V DRY repeats (row_edits.h, stored_repeat), zero
                           // between rows
  uint32_t* max_patched;   // num_groups(V) entries: whether a patch hit the group's raw maximum
                           // (dense edits: whether an edit may have changed it)
  uint32_t* raw_group_max; // num_groups(V) entries: group maxima of the unedited row
  uint32_t* dense_keys;    // V keys, or null: the edited row's copy (DenseView)
  // Patched edits only: the listed tokens' records (row_edits.h, TokenSlots), slot_mask + 1
  // entries each, a power of two at least twice the call's listed ids.
  int32_t* slot_tokens;    // the token in each slot, -1: free
  uint32_t* slot_keys;     // its key after stages 1-2 (when its `edited` bit is set)
  int32_t* slot_counts;    // its output count (when its `counted` bit is set)
  int32_t* slot_repeats;   // its DRY repeat (stored_repeat; when its `counted` bit is set)
  float* list_penalties;   // list_cap entries: the patched tokens' DRY penalties
  int64_t slot_mask;
};

FS_CODE_END
}  // namespace fastsample
