// A row's id lists, and the history read as one sequence: the edits that look at the order of
// the tokens (no_repeat_ngram_size, sequence_bias, DRY) rather than at their counts.
#pragma once
#include <cstdint>

#include "fastsample/common.h"

namespace fastsample {
FS_CODE_BEGIN

// Ids outside [0, V) are padding: the kernels skip them (Python rejects them first).
struct RowList {
  const int64_t* ids = nullptr;
  int64_t len = 0;
};

// The prompt's ids then the output's, by padded position (prompt positions first); padding may
// lie anywhere and is skipped, so the sequence is the valid ids in list order.
struct HistoryIds {
  RowList prompt, output;
  int64_t vocab;

  FS_HOST_DEVICE int64_t size() const { return prompt.len + output.len; }
  FS_HOST_DEVICE int64_t at(int64_t i) const {
    return i < prompt.len ? prompt.ids[i] : output.ids[i - prompt.len];
  }
  FS_HOST_DEVICE bool valid(int64_t i) const {
    const int64_t t = at(i);
    return t >= 0 && t < vocab;
  }
  // The valid position before i, or -1.
  FS_HOST_DEVICE int64_t before(int64_t i) const {
    do {
      --i;
    } while (i >= 0 && !valid(i));
    return i;
  }
  // The valid position after i, or size().
  FS_HOST_DEVICE int64_t after(int64_t i) const {
    do {
      ++i;
    } while (i < size() && !valid(i));
    return i;
  }
  // Whether the valid ids before position p end with ids[0 .. len).
  FS_HOST_DEVICE bool ends_with(int64_t p, const int64_t* ids, int64_t len) const {
    for (int64_t k = len - 1; k >= 0; --k) {
      p = before(p);
      if (p < 0 || at(p) != ids[k]) return false;
    }
    return true;
  }
};

// The history's last valid position (-1: none) and how many valid ids it holds. Collective.
struct HistoryEnd {
  int64_t last;
  uint64_t count;
};
template <class Ctx>
FS_HOST_DEVICE HistoryEnd history_end(Ctx& ctx, const HistoryIds& h) {
  int64_t b, e;
  ctx.segment(h.size(), &b, &e);
  int64_t last = -1;
  uint64_t count = 0;
  for (int64_t i = b; i < e; ++i) {
    if (h.valid(i)) {
      last = i;
      ++count;
    }
  }
  return HistoryEnd{-ctx.min_i64(-last), ctx.sum_u64(count)};
}

// transformers' no_repeat_ngram_size n (NoRepeatNGramLogitsProcessor): every token that would
// complete an n-gram already in the history, i.e. each token whose n - 1 predecessors equal the
// history's last n - 1 tokens (n = 1: every token of the history). Calls ban(token, position)
// for each such occurrence (a token may come more than once). Collective when n > 0.
// Cost: one pass over the padded history, and a backward comparison from each position that
// stops at the first mismatch (most stop at once): O(L) on a varied history, O(L n) at worst
// (a history of one repeated token).
template <class Ctx, class Ban>
FS_HOST_DEVICE void for_each_repeated_ngram_end(Ctx& ctx, const HistoryIds& h, int64_t n,
                                                const Ban& ban) {
  if (n <= 0) return;
  const HistoryEnd end = history_end(ctx, h);
  // Fewer than n tokens hold no n-gram (transformers: nothing is banned).
  if (end.count < uint64_t(n)) return;
  int64_t b, e;
  ctx.segment(h.size(), &b, &e);
  for (int64_t p = b; p < e; ++p) {
    if (!h.valid(p)) continue;
    int64_t a = p, c = end.last + 1;
    bool match = true;
    for (int64_t k = 1; k < n && match; ++k) {
      a = h.before(a);
      c = h.before(c);
      match = a >= 0 && h.at(a) == h.at(c);
    }
    if (match) ban(h.at(p), p);
  }
}

FS_CODE_END
}  // namespace fastsample
