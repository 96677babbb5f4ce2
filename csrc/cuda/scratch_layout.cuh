// Where one block's RowScratch lives inside its share of the workspace (16-byte aligned parts).
// The stage 1-3 buffers exist only when a call has edits: V/32-word bitsets, per-group arrays,
// and lists and token slots sized by the call's listed ids (none of them V words). Host code
// sizes the workspace with it; each block carves its share with it.
#pragma once
#include <cstdint>

#include "fastsample/row_sampler.h"

namespace fastsample::cuda {

class ScratchLayout {
 public:
  // patches: max_patches of the call's EditArgs (its rows list at most this many ids).
  __host__ __device__ ScratchLayout(int64_t vocab, bool with_edits, int64_t patches)
      : edits_(with_edits), list_cap_(with_edits ? patches : 0),
        slots_(with_edits ? TokenSlots::capacity(patches) : 0) {
    const int64_t groups = 4 * num_groups(vocab);
    group_max_ = take(groups);
    cand_keys_ = take(4 * int64_t(kFastListCap));
    cand_tokens_ = take(4 * int64_t(kFastListCap));
    bin_keys_ = take(4 * int64_t(kBinListCap));
    bin_tokens_ = take(4 * int64_t(kBinListCap));
    if (!edits_) return;
    const int64_t bits = 4 * num_words(vocab);
    edited_ = take(bits);
    allowed_ = take(bits);
    seen_ = take(bits);
    counted_ = take(bits);
    list_tokens_ = take(4 * list_cap_);
    list_keys_ = take(4 * list_cap_);
    list_raw_keys_ = take(4 * list_cap_);
    list_counts_ = take(4 * list_cap_);
    group_start_ = take(groups + 4);
    max_patched_ = take(groups + 4);
    raw_group_max_ = take(groups);
    slot_tokens_ = take(4 * slots_);
    slot_keys_ = take(4 * slots_);
    slot_counts_ = take(4 * slots_);
  }

  // Bytes of one block's share.
  __host__ __device__ int64_t bytes() const { return bytes_; }

  __device__ RowScratch at(unsigned char* base) const {
    RowScratch s{};
    s.group_max = reinterpret_cast<uint32_t*>(base + group_max_);
    s.cand_keys = reinterpret_cast<uint32_t*>(base + cand_keys_);
    s.cand_tokens = reinterpret_cast<int32_t*>(base + cand_tokens_);
    s.bin_keys = reinterpret_cast<uint32_t*>(base + bin_keys_);
    s.bin_tokens = reinterpret_cast<int32_t*>(base + bin_tokens_);
    s.bin_cap = kBinListCap;
    if (!edits_) return s;
    s.edited = reinterpret_cast<uint32_t*>(base + edited_);
    s.allowed = reinterpret_cast<uint32_t*>(base + allowed_);
    s.seen = reinterpret_cast<uint32_t*>(base + seen_);
    s.counted = reinterpret_cast<uint32_t*>(base + counted_);
    s.list_tokens = reinterpret_cast<int32_t*>(base + list_tokens_);
    s.list_keys = reinterpret_cast<uint32_t*>(base + list_keys_);
    s.list_raw_keys = reinterpret_cast<uint32_t*>(base + list_raw_keys_);
    s.list_counts = reinterpret_cast<int32_t*>(base + list_counts_);
    s.list_cap = list_cap_;
    s.group_start = reinterpret_cast<int32_t*>(base + group_start_);
    s.max_patched = reinterpret_cast<uint32_t*>(base + max_patched_);
    s.raw_group_max = reinterpret_cast<uint32_t*>(base + raw_group_max_);
    s.slot_tokens = reinterpret_cast<int32_t*>(base + slot_tokens_);
    s.slot_keys = reinterpret_cast<uint32_t*>(base + slot_keys_);
    s.slot_counts = reinterpret_cast<int32_t*>(base + slot_counts_);
    s.slot_mask = slots_ - 1;
    return s;
  }

 private:
  // The offset of a new part of `n` bytes, rounded up to 16.
  __host__ __device__ int64_t take(int64_t n) {
    const int64_t at = bytes_;
    bytes_ += (n + 15) / 16 * 16;
    return at;
  }

  bool edits_;
  int64_t list_cap_, slots_, bytes_ = 0;
  int64_t group_max_ = 0, cand_keys_ = 0, cand_tokens_ = 0, bin_keys_ = 0, bin_tokens_ = 0;
  int64_t edited_ = 0, allowed_ = 0, seen_ = 0, counted_ = 0, list_tokens_ = 0, list_keys_ = 0,
          list_raw_keys_ = 0, list_counts_ = 0, group_start_ = 0, max_patched_ = 0,
          raw_group_max_ = 0, slot_tokens_ = 0, slot_keys_ = 0, slot_counts_ = 0;
};

}  // namespace fastsample::cuda
