// llama.cpp's DRY ("don't repeat yourself") penalty over the history read as one sequence
// (history_ids.h): a token that would extend a repeat of the history's end by one is penalized
// by multiplier x base^(repeat length - allowed_length).
#pragma once
#include <cstdint>

#include "fastsample/float_key.h"
#include "fastsample/history_ids.h"

namespace fastsample {
FS_CODE_BEGIN

struct DryParams {
  float multiplier = 0.0f;      // 0: off
  float base = 1.75f;           // >= 1
  int64_t allowed_length = 2;   // repeats shorter than this are free
  int64_t last_n = -1;          // the window: the history's last last_n ids; -1 all, 0 off
  RowList breakers;             // sequence breakers: runs of ids separated by padding
};

// base^e by squaring in double: the same bits on every backend (a library pow may differ by an
// ulp between host and device).
FS_HOST_DEVICE inline double dry_power(double base, int64_t e) {
  double r = 1.0;
  while (e > 0) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return r;
}

constexpr double kFloat32Max = 3.4028234663852886e38;

// The largest exponent e' <= e with base^e' <= the largest float32: llama.cpp stops the
// exponent where base^e would overflow float32.
FS_HOST_DEVICE inline int64_t dry_exponent(double base, int64_t e) {
  if (dry_power(base, e) <= kFloat32Max) return e;
  int64_t lo = 0, hi = e;  // base^lo fits, base^hi does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (dry_power(base, mid) <= kFloat32Max) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// The penalty of a token whose longest repeat is `length` >= allowed_length tokens, as
// llama.cpp computes it (float multiplier x std::pow(float base, int) in double, rounded once
// to float32; +inf past float32's range).
FS_HOST_DEVICE inline float dry_penalty(const DryParams& d, int64_t length) {
  const double v =
      double(d.multiplier) * dry_power(d.base, dry_exponent(d.base, length - d.allowed_length));
  // Half an ulp above the largest float32 rounds to +inf (ties to even).
  return v >= 3.4028235677973366e38 ? bits_float(0x7f800000u) : float(v);
}

// The history's last n valid ids: positions [first, last] (first = -1: none), the ranks
// total - n .. total - 1 among the history's valid ids.
struct HistoryWindow {
  int64_t first, last;
  uint64_t n, total;
  uint64_t before_segment;  // valid ids before this worker's segment (ctx.segment(h.size()))
};

// The window over the history's last `last_n` valid ids (-1: all of them). Collective.
template <class Ctx>
FS_HOST_DEVICE HistoryWindow history_window(Ctx& ctx, const HistoryIds& h, int64_t last_n) {
  int64_t b, e;
  ctx.segment(h.size(), &b, &e);
  int64_t last = -1;
  uint64_t mine = 0;
  for (int64_t i = b; i < e; ++i) {
    if (h.valid(i)) {
      last = i;
      ++mine;
    }
  }
  uint64_t total = 0;
  const uint64_t before = ctx.exclusive_scan_u64(mine, &total);
  last = -ctx.min_i64(-last);
  const uint64_t n = last_n < 0 || uint64_t(last_n) > total ? total : uint64_t(last_n);
  // The window's first id has rank total - n; the worker holding it finds it.
  const uint64_t target = total - n;
  int64_t first = INT64_MAX;
  if (n > 0 && target >= before && target < before + mine) {
    uint64_t rank = before;
    for (int64_t i = b; i < e && first == INT64_MAX; ++i) {
      if (h.valid(i) && rank++ == target) first = i;
    }
  }
  first = ctx.min_i64(first);
  return HistoryWindow{n > 0 ? first : -1, last, n, total, before};
}

// Calls run(start, length) for each run of valid ids in `l` (the sequence breakers).
template <class F>
FS_HOST_DEVICE void for_each_run(const RowList& l, int64_t vocab, const F& run) {
  int64_t s = -1;
  for (int64_t j = 0; j <= l.len; ++j) {
    const bool valid = j < l.len && l.ids[j] >= 0 && l.ids[j] < vocab;
    if (valid && s < 0) s = j;
    if (!valid && s >= 0) {
      run(s, j - s);
      s = -1;
    }
  }
}

// Whether `run` (m ids) occurs at position p, its ids at p and the valid positions after it, up
// to `last`.
FS_HOST_DEVICE inline bool run_at(const HistoryIds& h, int64_t p, int64_t last,
                                  const int64_t* run, int64_t m) {
  for (int64_t k = 0; k < m; ++k) {
    if (p > last || h.at(p) != run[k]) return false;
    p = h.after(p);
  }
  return true;
}

// llama.cpp's DRY over the window: calls penalize(token, length, position) for each window
// position j but the last whose repeat length is >= allowed_length: the number of ids ending at
// j that equal the ids ending the history, inside the window and at most rep_limit. token is the
// id after j (at `position`), unless it is a one-id sequence breaker; a token may come more than
// once (its penalty follows its longest length). rep_limit: the ids after the latest-starting
// sequence breaker in the window (the longest of those starting there), else the window's size.
// Lengths stop where a longer one no longer changes the penalty (llama.cpp's exponent clamp;
// base 1: at allowed_length). Collective when d.multiplier > 0 and d.last_n != 0.
// Cost: one pass over the padded history; with breakers, each window position compares its id
// with every breaker's first id (O(L x breaker ids) at most); and a backward comparison from
// each position that stops at the first mismatch: O(L) on a varied history,
// O(L x min(L, allowed_length + 88.7 / ln base)) at worst (one token repeated; llama.cpp's
// Z-algorithm is O(L), but runs on one thread).
template <class Ctx, class Penalize>
FS_HOST_DEVICE void for_each_dry_repeat(Ctx& ctx, const HistoryIds& h, const DryParams& d,
                                        const Penalize& penalize) {
  if (!(d.multiplier > 0.0f) || d.last_n == 0) return;
  const HistoryWindow w = history_window(ctx, h, d.last_n);
  if (w.n <= uint64_t(d.allowed_length)) return;  // no repeat can be long enough
  const int64_t vocab = h.vocab;
  const uint64_t window_rank = w.total - w.n;
  int64_t b, e;
  ctx.segment(h.size(), &b, &e);
  // The latest breaker as one key: its distance from the end (ids after its first), then the
  // longest run starting there (the complement of its length minus one, so that min prefers it).
  constexpr int kLenBits = 24;  // Python keeps runs shorter
  constexpr int64_t kLenMask = (int64_t(1) << kLenBits) - 1;
  int64_t latest = INT64_MAX;
  if (d.breakers.len > 0) {
    uint64_t rank = w.before_segment;
    for (int64_t p = b; p < e; ++p) {
      if (!h.valid(p)) continue;
      const uint64_t r = rank++;
      if (r < window_rank) continue;
      const int64_t from_end = int64_t(w.total - 1 - r);
      int64_t longest = -1;
      for_each_run(d.breakers, vocab, [&](int64_t s, int64_t m) {
        if (m - 1 > longest && run_at(h, p, w.last, d.breakers.ids + s, m)) longest = m - 1;
      });
      if (longest >= 0) {
        const int64_t key = (from_end << kLenBits) | (kLenMask - longest);
        latest = key < latest ? key : latest;
      }
    }
  }
  latest = ctx.min_i64(latest);
  const int64_t rep_limit = latest == INT64_MAX
                                ? int64_t(w.n)
                                : (latest >> kLenBits) - (kLenMask - (latest & kLenMask));
  if (rep_limit < d.allowed_length) return;
  const int64_t cap = d.base == 1.0f ? d.allowed_length
                                     : d.allowed_length +
                                           dry_exponent(d.base, rep_limit - d.allowed_length);
  const auto single_breaker = [&](int64_t t) {
    bool is = false;
    for_each_run(d.breakers, vocab, [&](int64_t s, int64_t m) {
      is = is || (m == 1 && d.breakers.ids[s] == t);
    });
    return is;
  };
  uint64_t rank = w.before_segment;
  for (int64_t p = b; p < e; ++p) {
    if (!h.valid(p)) continue;
    if (rank++ < window_rank || p == w.last) continue;
    int64_t length = 0;
    for (int64_t a = p, c = w.last; length < cap && a >= w.first && h.at(a) == h.at(c);
         a = h.before(a), c = h.before(c)) {
      ++length;
    }
    if (length < d.allowed_length) continue;
    const int64_t next = h.after(p);
    const int64_t t = h.at(next);
    if (!single_breaker(t)) penalize(t, length, next);
  }
}

FS_CODE_END
}  // namespace fastsample
