// Where a row group's RowScratch (views.h) lives inside one buffer: every part listed once, in
// order, each 16-byte aligned. Both backends follow it: the CUDA host code sizes the workspace
// with bytes() and each block carves its share with at(); each CPU worker carves its own
// buffer. The stage 1-3 parts exist only when the call has edits, and none of them is V words
// except the dense copy of an edited row (CPU only): V/32-word bitsets, per-group arrays, and
// lists and token slots sized by the call's listed ids.
#pragma once
#include <cstdint>

#include "fastsample/batch_args.h"
#include "fastsample/row_edits.h"
#include "fastsample/views.h"

namespace fastsample {
FS_CODE_BEGIN

class ScratchLayout {
 public:
  enum class Edits : int {
    kNone,     // no stages 1-3
    kPatched,  // edited rows read through patch lists (PatchedView) and token slots
    kDense,    // edited rows copied as keys (DenseView); `marks` comes from the caller, as it
               // must hold zeros between rows
  };

  // listed: the ids the call's stages 1-3 list per row (batch_args.h, listed_ids).
  FS_HOST_DEVICE ScratchLayout(int64_t vocab, Edits edits, int64_t listed)
      : vocab_(vocab), edits_(edits) {
    // Patch lists hold each listed token once; dense rows record every listed id (records
    // may repeat a token).
    if (edits != Edits::kNone) {
      list_cap_ = edits == Edits::kDense || listed < vocab ? listed : vocab;
    }
    slots_ = edits == Edits::kPatched ? TokenSlots::capacity(list_cap_) : 0;
  }

  // Bytes of one row group's share.
  FS_HOST_DEVICE int64_t bytes() const {
    Sizer sizer;
    parts(sizer);
    return sizer.bytes;
  }

  // The scratch at `base` (16-byte aligned, bytes() long).
  FS_HOST_DEVICE RowScratch at(unsigned char* base) const {
    Carver carver{base};
    parts(carver);
    RowScratch& s = carver.scratch;
    s.bin_cap = kBinListCap;
    s.list_cap = list_cap_;
    s.slot_mask = slots_ > 0 ? slots_ - 1 : 0;
    return s;
  }

 private:
  template <class Visit>
  FS_HOST_DEVICE void parts(Visit& part) const {
    const int64_t groups = num_groups(vocab_), words = num_words(vocab_);
    part(&RowScratch::group_max, groups);
    part(&RowScratch::cand_keys, kFastListCap);
    part(&RowScratch::cand_tokens, kFastListCap);
    part(&RowScratch::bin_keys, kBinListCap);
    part(&RowScratch::bin_tokens, kBinListCap);
    if (edits_ == Edits::kNone) return;
    part(&RowScratch::edited, words);
    part(&RowScratch::allowed, words);
    part(&RowScratch::seen, words);
    part(&RowScratch::counted, words);
    part(&RowScratch::list_tokens, list_cap_);
    part(&RowScratch::list_keys, list_cap_);
    part(&RowScratch::list_raw_keys, list_cap_);
    part(&RowScratch::list_counts, list_cap_);
    part(&RowScratch::group_start, groups + 1);
    part(&RowScratch::max_patched, groups + 1);
    part(&RowScratch::raw_group_max, groups);
    if (edits_ == Edits::kDense) {
      part(&RowScratch::dense_keys, vocab_);
      return;
    }
    part(&RowScratch::slot_tokens, slots_);
    part(&RowScratch::slot_keys, slots_);
    part(&RowScratch::slot_counts, slots_);
    part(&RowScratch::slot_repeats, slots_);
    part(&RowScratch::list_penalties, list_cap_);
  }

  FS_HOST_DEVICE static int64_t aligned(int64_t bytes) { return (bytes + 15) / 16 * 16; }

  struct Sizer {
    int64_t bytes = 0;
    template <class T>
    FS_HOST_DEVICE void operator()(T* RowScratch::*, int64_t n) { bytes += aligned(n * sizeof(T)); }
  };
  struct Carver {
    unsigned char* at;
    RowScratch scratch{};
    template <class T>
    FS_HOST_DEVICE void operator()(T* RowScratch::*part, int64_t n) {
      scratch.*part = reinterpret_cast<T*>(at);
      at += aligned(n * sizeof(T));
    }
  };

  int64_t vocab_;
  Edits edits_;
  int64_t list_cap_ = 0, slots_ = 0;
};

// A row group's scratch for a batch call. dense_edits: edited rows are copied as keys (the CPU
// kernels' default); otherwise read through patch lists (the CUDA blocks, and the CPU under
// FASTSAMPLE_CPU_EDITED_ROWS=patched).
FS_HOST_DEVICE inline ScratchLayout scratch_layout(const BatchArgs& a, bool dense_edits) {
  using Edits = ScratchLayout::Edits;
  const Edits edits = !a.edits.enabled ? Edits::kNone : dense_edits ? Edits::kDense
                                                                    : Edits::kPatched;
  return ScratchLayout(a.vocab, edits, listed_ids(a.edits));
}

FS_CODE_END
}  // namespace fastsample
