// Stage 7: the sampled token's logprob and the top-n alternatives, raw (log_softmax of the
// sanitized logits) or processed (log_softmax of z over the keep-set). The normalizer is the
// same exact fixed-point mass sum the draw uses, so no extra float reduction order creeps in.
#pragma once
#include <cmath>
#include "fastsample/row_filters.h"

namespace fastsample {
FS_CODE_BEGIN

constexpr int kMaxTopLogprobs = 20;

// The n largest keys in [min_key, max_key] of a list, in (key desc, token asc) order; returns
// how many. Serial and identical on every worker: lists here are short.
FS_HOST_DEVICE inline int select_top_n(const ListView& list, int n, uint32_t min_key,
                                       uint32_t max_key, uint32_t* keys, int64_t* tokens) {
  if (n <= 0) return 0;  // else keys[n - 1] below is keys[-1]
  int count = 0;
  for (int64_t i = 0; i < list.n; ++i) {
    const uint32_t k = list.keys[i];
    if (k < min_key || k > max_key || (count == n && k <= keys[n - 1])) continue;
    int at = count < n ? count++ : n - 1;
    // The list is in token order, so among equal keys the earlier token stays ahead.
    while (at > 0 && keys[at - 1] < k) {
      keys[at] = keys[at - 1];
      tokens[at] = tokens[at - 1];
      --at;
    }
    keys[at] = k;
    tokens[at] = list.tokens[i];
  }
  return count;
}

// Top n (<= kMaxTopLogprobs) of a row's keys in [min_key, max_key]. gmax: the view's group
// maxima. Without an upper end (max_key = kNoUpperKey) the n-th largest group maximum bounds the
// n-th largest key from below, so only groups reaching it are listed; within a band (XTC) the
// groups' maxima may lie above it, and the n-th largest key of the band is selected exactly
// instead. A list over the bin buffers' capacity (massive ties) is rebuilt from the exact n-th
// key.
template <class Ctx, class View>
FS_HOST_DEVICE int row_top_n(Ctx& ctx, const View& view, int n, uint32_t min_key,
                             uint32_t max_key, const uint32_t* gmax, const RowScratch& scratch,
                             uint32_t* keys, int64_t* tokens) {
  if (n <= 0) return 0;
  const CountAtMost in_band{max_key};
  uint32_t tau = min_key;
  if (max_key == kNoUpperKey) {
    auto solo = ctx.solo();
    const KeysView groups{gmax, num_groups(view.size())};
    if (view_count_at_least(solo, groups, min_key) >= uint64_t(n)) {
      const uint32_t bound =
          radix_select_desc(solo, groups, min_key, uint64_t(n), CountWeight{}, 2);
      tau = bound > min_key ? bound : min_key;
    }
  } else if (view_count_at_least(ctx, view, min_key) -
                 view_count_at_least(ctx, view, max_key + 1) >= uint64_t(n)) {
    tau = radix_select_desc(ctx, view, min_key, uint64_t(n), in_band);
  }
  const auto below_top = [max_key](uint32_t k) { return k <= max_key; };
  int64_t count = ctx.compact(view, tau, below_top, scratch.bin_keys, scratch.bin_tokens,
                              scratch.bin_cap, gmax);
  if (count > scratch.bin_cap) {
    // More than bin_cap keys tie at the top: those above the n-th key (fewer than n), then the
    // first n tokens equal to it.
    const uint32_t kth = radix_select_desc(ctx, view, min_key, uint64_t(n), in_band);
    int64_t above = 0;
    if (kth != 0xffffffffu) {
      above = ctx.compact(view, kth + 1, below_top, scratch.bin_keys, scratch.bin_tokens, n,
                          gmax);
    }
    const int64_t ties = ctx.compact(view, kth, [kth](uint32_t k) { return k == kth; },
                                     scratch.bin_keys + above, scratch.bin_tokens + above, n, gmax);
    count = above + (ties < n ? ties : n);
  }
  return select_top_n(ListView{scratch.bin_keys, scratch.bin_tokens, count}, n, min_key, max_key,
                      keys, tokens);
}

// log of a fixed-point mass total (>= 2^38: the max itself weighs exactly one).
FS_HOST_DEVICE inline double log_mass(uint64_t total) {
  return log(double(total)) - double(kMassFracBits) * 0.69314718055994530942;
}

// Where a row's logprobs go, and how the values are computed from keys.
struct LogprobOut {
  float* logprob;      // the row's token
  int64_t* top_ids;    // n entries
  float* top_logprobs;
  int n;
};

struct LogSoftmax {
  Temperature temp;    // identity for raw logprobs
  double z_max, log_total;
  // A finite logit has a finite logprob: one more than FLT_MAX below the maximum (logits
  // near both ends of the float range) is the lowest float, not -inf, which means "no mass".
  FS_HOST_DEVICE float operator()(uint32_t key) const {
    const double lowest = -double(bits_float(kFloatMaxBits));
    const double v = double(temp.z_of_key(key)) - z_max - log_total;
    return float(key > kNegInfKey && v < lowest ? lowest : v);
  }
};

// Writes the row's logprob for `token` (key token_key) and its top-n; rank 0 writes.
template <class Ctx>
FS_HOST_DEVICE void write_logprobs(Ctx& ctx, const LogprobOut& out, const LogSoftmax& ls,
                                   int64_t token, uint32_t token_key, const uint32_t* keys,
                                   const int64_t* tokens, int found) {
  if (ctx.rank() != 0) return;
  const float neg_inf = bits_float(kNegInfBits);
  *out.logprob = token < 0 ? neg_inf : ls(token_key);
  for (int j = 0; j < out.n; ++j) {
    out.top_ids[j] = j < found ? tokens[j] : -1;
    out.top_logprobs[j] = j < found ? ls(keys[j]) : neg_inf;
  }
}

// log_total argument of raw_logprobs when the mass is not known yet (a log mass is >= 0: the
// maximum alone weighs one).
constexpr double kUnknownLogMass = -1.0;

// Raw logprobs of `raw` (stage 0 only) for `token`. gmax: raw's group maxima; m: raw's maximum;
// log_total: log of raw's mass relative to m (log_mass), or kUnknownLogMass to sum it here.
template <class Ctx, class View>
FS_HOST_DEVICE void raw_logprobs(Ctx& ctx, const View& raw, int64_t token, const uint32_t* gmax,
                                 RowMax m, const RowScratch& scratch, const LogprobOut& out,
                                 double log_total = kUnknownLogMass) {
  uint32_t keys[kMaxTopLogprobs];
  int64_t tokens[kMaxTopLogprobs];
  if (m.key <= kNegInfKey || token < 0) {
    write_logprobs(ctx, out, LogSoftmax{Temperature(1.0f), 0.0, 0.0}, -1, 0, nullptr, nullptr, 0);
    return;
  }
  const Temperature identity(1.0f);
  const MassWeight mass{identity, key_to_float(m.key)};
  if (log_total < 0.0) {
    log_total = log_mass(
        ctx.sum_u64(local_keep_set_mass(ctx, raw, kNegInfKey + 1, kNoUpperKey, mass)));
  }
  const LogSoftmax ls{identity, double(mass.z_max), log_total};
  const int found =
      row_top_n(ctx, raw, out.n, kNegInfKey + 1, kNoUpperKey, gmax, scratch, keys, tokens);
  write_logprobs(ctx, out, ls, token, raw.key(token), keys, tokens, found);
}

// log_mass of a raw row (relative to its maximum raw_max, T = 1) from its edited row's mass
// row_mass (every finite key, relative to row_max, T = 1: what top-p sums when T = 1 and there is
// no top-k) and the n tokens whose keys may differ (`keys` edited, `raw_keys` raw; visible to
// every worker): their edited masses come out, their raw masses go in. That sum is exact, and
// scaled by exp(z_row - z_raw) <= 1 its rounding does not grow. Needs row_max <= raw_max.
template <class Ctx>
FS_HOST_DEVICE double raw_log_mass_from_lists(Ctx& ctx, const uint32_t* keys,
                                              const uint32_t* raw_keys, int64_t n,
                                              uint64_t row_mass, uint32_t row_max,
                                              uint32_t raw_max) {
  const Temperature identity(1.0f);
  const MassWeight edited{identity, key_to_float(row_max)};
  const MassWeight unedited{identity, key_to_float(raw_max)};
  // Both sums a chunk at a time (they vectorize).
  const uint64_t out =
      ctx.sum_u64(local_keep_set_mass(ctx, KeysView{keys, n}, kNegInfKey + 1, kNoUpperKey,
                                      edited));
  const uint64_t in =
      ctx.sum_u64(local_keep_set_mass(ctx, KeysView{raw_keys, n}, kNegInfKey + 1, kNoUpperKey,
                                      unedited));
  if (row_max == raw_max) return log_mass(row_mass - out + in);  // what a pass over raw sums
  const double scale = exp(double(key_to_float(row_max)) - double(key_to_float(raw_max)));
  return log(double(row_mass - out) * scale + double(in)) -
         double(kMassFracBits) * 0.69314718055994530942;
}

// The same for a patched row, over its patch list. kUnknownLogMass when it does not hold (a
// dense mask, or an edit raised the maximum).
template <class Ctx, DType D>
FS_HOST_DEVICE double raw_log_mass_from_edits(Ctx& ctx, const PatchedView<D>& row,
                                                uint64_t row_mass, uint32_t row_max,
                                                uint32_t raw_max, const RowScratch& scratch) {
  if (row.allowed != nullptr || row_max > raw_max || row_mass == 0) return kUnknownLogMass;
  return raw_log_mass_from_lists(ctx, row.list_keys, scratch.list_raw_keys,
                                 row.group_start[num_groups(row.size())], row_mass, row_max,
                                 raw_max);
}

FS_CODE_END
}  // namespace fastsample
