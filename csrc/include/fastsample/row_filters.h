// Stages 4-5 for one row: greedy, temperature, top-k, top-n-sigma, top-p, min-p, typical-p,
// epsilon, eta and XTC as one band of keys.
//
// Every filter's keep-set is an interval of z: top-k, top-n-sigma, top-p, min-p, epsilon and eta
// a lower bound {z >= c}, XTC an upper one, typical-p both. z is monotone in x, so each becomes
// an interval of the sanitized logits' keys and the keep-set is their intersection,
// [lo_key, hi_key].
#pragma once
#include <cmath>
#include "fastsample/chunk_loops.h"
#include "fastsample/entropy_filters.h"
#include "fastsample/keep_set_mass.h"
#include "fastsample/philox.h"
#include "fastsample/radix_select.h"
#include "fastsample/row_params.h"
#include "fastsample/views.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowKeep {
  bool valid;          // false: no finite logit, no token can be drawn
  bool greedy;         // T == 0: the keep-set is {argmax} alone
  int64_t argmax;      // lowest token among the maxima
  uint32_t max_key;
  uint32_t lo_key;     // keep-set = {lo_key <= key <= hi_key}
  uint32_t hi_key;     // max_key unless typical-p or XTC removed the top of the row
  // Mass of every finite key relative to max_key at the row's temperature, when top-p summed it
  // on the way (no top-k bound below it); 0 otherwise.
  uint64_t row_mass;
};

// Bin of distance d in the top-p histogram whose distances from tail / kMassBinsPerUnit on all
// share bin `tail`.
FS_HOST_DEVICE FS_INLINE int mass_bin(float d, int tail) {
  const float scaled = d * float(kMassBinsPerUnit);
  return scaled < float(tail) ? int(scaled) : tail;
}

// The top-p histogram's tail bin for a view of n elements: the first bin whose elements together
// cannot hold the boundary, so the search never reads it and the pass need not add to it.
// Above the tail lies at least the maximum's own mass, M = 2^38 units (d = 0, exp(0) = 1
// exactly); each tail element (d >= D) weighs at most e^-D (1 + 8e-8) M + 1 units (the exp's
// relative error), n of them at most T. need = ceil(p (H + T)) <= p' (H + T) + 1 with p' = p
// rounded up past double products, so the search stops above the tail when (1 - p') M >= p' T + 1,
// which holds when e^-D (1 + 2^-20) <= (1 - p') / (p' n) - (1 / (p' n) + 1) 2^-38.
// When 1 - p is too small for such a D within kMassHistRange, the tail is the last bin.
FS_HOST_DEVICE inline int top_p_tail_bin(double top_p, int64_t n) {
  const double unit = 1.0 / double(uint64_t(1) << kMassFracBits);
  const double pn = top_p * (1.0 + 0x1p-40) * double(n > 0 ? n : 1);
  const double per_element =
      ((1.0 - top_p * (1.0 + 0x1p-40)) / pn - (1.0 / pn + 1.0) * unit) / (1.0 + 0x1p-20);
  if (!(per_element > 0.0)) return kMassBins - 1;
  // Bin 0 always exists: it holds the maximum, where the search then stops.
  const double d = (-log(per_element) + 0x1p-20) * double(kMassBinsPerUnit);
  if (!(d >= 1.0)) return 1;
  return d < double(kMassBins - 1) ? int(ceil(d)) : kMassBins - 1;
}

struct RowMax {
  uint32_t key;    // kNegInfKey or below: the row has no finite logit
  int64_t token;   // lowest token with that key
};

// The row's maximum from its per-group maxima gmax: the first group holding the max, then the
// first position in it.
template <class Ctx, class View>
FS_HOST_DEVICE RowMax max_of_groups(Ctx& ctx, const View& view, const uint32_t* gmax) {
  int64_t g0, g1;
  ctx.segment(num_groups(view.size()), &g0, &g1);
  // The maximum (a loop that vectorizes), then the first group holding it.
  uint32_t best = 0;
  for (int64_t g = g0; g < g1; ++g) best = gmax[g] > best ? gmax[g] : best;
  int64_t best_group = INT64_MAX;
  for (int64_t g = g0; g < g1; ++g) {
    if (gmax[g] == best) {
      best_group = g;
      break;
    }
  }
  ctx.argmax(&best, &best_group);
  RowMax m{best, 0};
  const int64_t first = best_group * kGroup;
  const int64_t last = first + kGroup < view.size() ? first + kGroup : view.size();
  for (int64_t i = first; i < last; ++i) {
    if (view.key(i) == best) {
      m.token = view.token(i);
      break;
    }
  }
  return m;
}

// The row's maximum, after per-group maxima (ctx.group_max, left in gmax for later passes to
// skip groups with).
template <class Ctx, class View>
FS_HOST_DEVICE RowMax row_max(Ctx& ctx, const View& view, uint32_t* gmax) {
  ctx.group_max(view, gmax);
  return max_of_groups(ctx, view, gmax);
}

// Smallest key whose mass bin is <= b: bins do not increase with the key (d falls as z rises).
FS_HOST_DEVICE inline uint32_t min_key_with_bin_at_most(const MassWeight& mass, int tail, int b) {
  const auto bin_of = [&](uint32_t key) {
    return mass_bin(mass.z_max - mass.temp.z_of_key(key), tail);
  };
  // kFloatMaxKey + 1 (no key) is never returned for b >= 0 and a finite max.
  return first_key_where(kNegInfKey, kFloatMaxKey, [&](uint32_t key) { return bin_of(key) <= b; });
}

// Largest key t such that the mass of {key >= t} (among key >= lo) reaches p of the total.
// A histogram over the distance from the max finds the boundary bin; the bin's elements (one
// key interval) are then compacted and resolved exactly by a mass-weighted radix select.
// *total: the mass of {key >= lo}.
template <class Ctx, class View>
FS_HOST_DEVICE uint32_t top_p_cut_key(Ctx& ctx, const View& view, uint32_t lo, double top_p,
                                      const MassWeight& mass, const uint32_t* gmax,
                                      const RowScratch& scratch, uint64_t* total_out) {
  if (view.size() <= kShortList) {
    // A short list: the mass-weighted radix select straight over it (same cut, no histogram).
    const uint64_t total = ctx.sum_u64(local_keep_set_mass(ctx, view, lo, kNoUpperKey, mass));
    *total_out = total;
    return radix_select_desc<8>(ctx, view, lo, top_p_need(top_p, total), mass);
  }
  const int tail = top_p_tail_bin(top_p, view.size());
  uint64_t local_total = 0;
  uint64_t* local = ctx.hist_begin(tail + 1);
  // d < tail_d <=> mass_bin(d, tail) < tail: scaling by a power of two is exact.
  const float tail_d = float(tail) / float(kMassBinsPerUnit);
  // Below the floor only -inf keys, whose mass is 0 anyway: no chunk is worth skipping.
  const bool skip_chunks = lo > kNegInfKey + 1;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
    if (skip_chunks && chunk_max(keys, n) < lo) return;
    float d[Ctx::kChunk], m[Ctx::kChunk];
    chunk_distance(keys, n, lo, kNoUpperKey, mass.temp, mass.z_max, d);
    chunk_mass(d, n, m);
    local_total += chunk_mass_sum(m, n);
    // Most of a typical row lies in the tail, which is never read: only the rest is added.
    ctx.for_each_below(d, n, tail_d, [&](int j) {
      ctx.hist_add(local, int(d[j] * float(kMassBinsPerUnit)), mass_of(m[j]));
    });
  });
  const uint64_t* hist = ctx.hist_end(local, tail + 1);
  const uint64_t total = ctx.sum_u64(local_total);
  *total_out = total;
  const uint64_t need = top_p_need(top_p, total);
  int bin = 0;
  uint64_t above = 0;
  for (; bin < tail; ++bin) {
    if (above + hist[bin] >= need) break;
    above += hist[bin];
  }
  const uint32_t bin_lo = min_key_with_bin_at_most(mass, tail, bin);
  const uint32_t bin_hi =
      bin == 0 ? kFloatMaxKey : min_key_with_bin_at_most(mass, tail, bin - 1) - 1;
  const uint32_t bin_floor = bin_lo > lo ? bin_lo : lo;
  const int64_t n_bin = ctx.compact(
      view, bin_floor, [bin_hi](uint32_t key) { return key <= bin_hi; }, scratch.bin_keys,
      scratch.bin_tokens, scratch.bin_cap, gmax);
  if (n_bin <= scratch.bin_cap) {
    const ListView bin_view{scratch.bin_keys, scratch.bin_tokens, n_bin};
    return radix_select_any(ctx, bin_view, lo, need - above, mass);
  }
  // Too many to list: the same cut over the row. Everything above the bin weighs `above` < need,
  // so the largest key reaching `need` over {key >= bin_floor} lies in the bin and is the same.
  return radix_select_desc(ctx, view, bin_floor, need, mass);
}

// top-n-sigma's distance below the maximum, in x: n times the standard deviation of the row's
// finite logits (llama.cpp's top_n_sigma). Exact and the same in any summation order: each
// d = x_max - x (float) becomes q = floor(min(d, 65535) * 2^16), an integer below 2^32, and the
// count, the sum of q and the sum of q^2 (as its high and low 32-bit halves) are integer sums;
// var = E[q^2] - E[q]^2 is then evaluated once, with an explicit fma, in double. Not inlined:
// inside row_keep_set its 64-bit sums lifted the CUDA sample kernels from 127 to 154 registers
// (past 128, one block per multiprocessor instead of two); as a call they stay at 127.
template <class Ctx, class View>
FS_HOST_DEVICE FS_NOINLINE double n_sigma_distance(Ctx& ctx, const View& view, float x_max,
                                                   float n) {
  uint64_t count = 0, s1 = 0, s2_hi = 0, s2_lo = 0;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int len) {
    for (int j = 0; j < len; ++j) {
      if (keys[j] <= kNegInfKey) continue;
      const float d = x_max - key_to_float(keys[j]);
      const uint64_t q = uint64_t((d < 65535.0f ? d : 65535.0f) * 65536.0f);
      const uint64_t q2 = q * q;
      count += 1;
      s1 += q;
      s2_hi += q2 >> 32;
      s2_lo += q2 & 0xffffffffu;
    }
  });
  count = ctx.sum_u64(count);
  s1 = ctx.sum_u64(s1);
  s2_hi = ctx.sum_u64(s2_hi);
  s2_lo = ctx.sum_u64(s2_lo);
  const double mean = double(s1) / double(count);
  const double mean_sq = (double(s2_hi) * 4294967296.0 + double(s2_lo)) / double(count);
  const double var = fma(-mean, mean, mean_sq);
  return double(n) * (var > 0.0 ? sqrt(var) : 0.0) / 65536.0;
}

// XTC (llama.cpp's "exclude top choices"): the upper end of the keep-set {lo <= key <= hi}.
// The tokens whose probability over that set reaches the threshold are its top choices; when
// there are two or more, all but the least likely of them (and the tokens tied with it on z)
// are removed. A probability is the draw's fixed-point mass over the set's total (`mass` is
// relative to hi): a token reaches the threshold when its mass is >= ceil(threshold x total),
// and at least one unit. Returns hi when nothing is removed. Not inlined, for the reason
// n_sigma_distance gives.
template <class Ctx, class View>
FS_HOST_DEVICE FS_NOINLINE uint32_t xtc_hi_key(Ctx& ctx, const View& view, uint32_t lo,
                                               uint32_t hi, float threshold,
                                               const MassWeight& mass, const uint32_t* gmax) {
  const uint64_t total = ctx.sum_u64(local_keep_set_mass(ctx, view, lo, hi, mass, gmax));
  const uint64_t need = top_p_need(double(threshold), total);
  // The smallest key reaching `need`: masses do not decrease as keys rise.
  const uint32_t reach = first_key_where(lo, hi, [&](uint32_t key) { return mass(key) >= need; });
  if (reach > hi || view_count_in(ctx, view, reach, hi) < 2) return hi;
  const uint32_t least = key_range_at_least(ctx, view, reach).min;
  const uint32_t top = mass.temp.max_key_with_z_at_most(mass.temp.z_of_key(least));
  return top < hi ? top : hi;
}

// The keep-set of one row over `view`, whose maximum is `m`. `view` holds every element of the row
// with key >= floor_key, and when floor_key > 0 (a candidate list) at least top_k of them.
// Returns lo_key < floor_key when a bound reached below what the view holds (the caller then
// retries on the whole row); a view over the whole row passes floor_key = 0. gmax: the view's
// group maxima, or null. sigma_below: top-n-sigma's distance below the maximum
// (n_sigma_distance over the whole row), read when p.top_n_sigma > 0.
template <class Ctx, class View>
FS_HOST_DEVICE RowKeep row_keep_set(Ctx& ctx, const View& view, const RowParams& p,
                                    uint32_t floor_key, const RowMax& m, const uint32_t* gmax,
                                    const RowScratch& scratch, double sigma_below) {
  RowKeep keep{};
  keep.row_mass = 0;
  keep.max_key = m.key;
  keep.argmax = m.token;
  keep.valid = keep.max_key > kNegInfKey;
  keep.greedy = p.temperature == 0.0f;
  keep.lo_key = keep.max_key;
  keep.hi_key = keep.max_key;
  if (!keep.valid || keep.greedy) return keep;

  const Temperature temp(p.temperature);
  const float z_max = temp.z_of_key(keep.max_key);
  uint32_t lo = kNegInfKey + 1;  // -inf is never kept

  // top-k: keep z >= the k-th largest z; ties at the boundary all kept. A candidate list always
  // needs the bound: the row has elements below the list.
  if (p.top_k > 0 && (floor_key > 0 || view_count_at_least(ctx, view, lo) > uint64_t(p.top_k))) {
    const uint32_t kth = radix_select_any(ctx, view, lo, uint64_t(p.top_k), CountWeight{});
    lo = temp.min_key_with_z_at_least(temp.z_of_key(kth));
    if (lo < floor_key) {
      keep.lo_key = lo;
      return keep;
    }
  }
  // top-n-sigma: keep z >= z_max - n * std(z), std(z) = std(x) / T, over the whole row.
  if (p.top_n_sigma > 0.0f) {
    const float z_cut = z_max - float(sigma_below / double(p.temperature));
    const uint32_t sigma_lo = temp.min_key_with_z_at_least(z_cut);
    if (sigma_lo > lo) lo = sigma_lo;
  }
  // top-p renormalizes over what top-k and top-n-sigma keep.
  const uint32_t topk_lo = lo;

  // min-p: q_i >= m * max(q)  <=>  z_i >= z_max + ln(m), evaluated in float32 (ln m rounded once).
  if (p.min_p > 0.0f) {
    const float z_cut = z_max + float(log(double(p.min_p)));
    const uint32_t minp_lo = temp.min_key_with_z_at_least(z_cut);
    if (minp_lo > lo) lo = minp_lo;
  }

  // top-p over the top-k and top-n-sigma survivors (renormalized), intersected with the rest.
  if (p.top_p < 1.0) {
    const MassWeight mass{temp, z_max};
    uint64_t total = 0;
    const uint32_t cut = top_p_cut_key(ctx, view, topk_lo, p.top_p, mass, gmax, scratch, &total);
    if (topk_lo == kNegInfKey + 1 && floor_key == 0) keep.row_mass = total;
    const uint32_t topp_lo = temp.min_key_with_z_at_least(temp.z_of_key(cut));
    if (topp_lo > lo) lo = topp_lo;
  }
  // Every lower bound is <= max_key, so the argmax survives them; this guards rounding
  // regardless.
  keep.lo_key = lo > keep.max_key ? keep.max_key : lo;

  // typical-p, epsilon and eta on what the lower bounds keep (transformers' order).
  if (reads_distribution(p)) {
    const KeyBand band = entropy_filters(ctx, view, KeyBand{keep.lo_key, keep.max_key}, p,
                                         p.temperature, gmax);
    keep.lo_key = band.lo;
    keep.hi_key = band.hi;
  }
  // XTC, last, on what the others keep; a coin from the row's stream decides whether it acts.
  if (p.xtc_probability > 0.0f && row_coin(uint64_t(p.seed), uint64_t(p.offset)) <
                                      double(p.xtc_probability)) {
    keep.hi_key = xtc_hi_key(ctx, view, keep.lo_key, keep.hi_key, p.xtc_threshold,
                             MassWeight{temp, temp.z_of_key(keep.hi_key)}, gmax);
  }
  return keep;
}

FS_CODE_END
}  // namespace fastsample
