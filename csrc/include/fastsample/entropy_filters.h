// Stage 5's filters that read the keep-set's distribution: typical-p, epsilon and eta
// (transformers' TypicalLogitsWarper, EpsilonLogitsWarper and EtaLogitsWarper), in that order,
// each on what the one before keeps, after the lower bounds (top-k, top-n-sigma, top-p, min-p).
//
// Each measures probabilities over its band q = w / W (w: a key's fixed-point mass relative to
// the band's top, which weighs 2^38; W: the band's total). Typical-p and eta also read the
// band's entropy H = E_q[d] + ln(W / 2^38) for d = z_top - z. E_q[d] is the same in any
// summation order: where w > 0, d < 87 (the exp flushes beyond), so q_d = round(d * 2^16) <
// 2^23 and w * q_d < 2^62; those products are summed exactly as their 32-bit halves, and the
// sum and the mean each rounded once in double. Typical-p thus ranks tokens by |d - t| with
// t = E_q[d] within 2^-17 of its exact value. No step calls a library log or exp, whose last
// bit differs between the CPU's and the GPU's: eta's cutoff needs exp(-H) W = 2^38 exp(-E_q[d]),
// evaluated with the kernels' own exp.
#pragma once
#include <cmath>
#include "fastsample/keep_set_mass.h"
#include "fastsample/row_params.h"

namespace fastsample {
FS_CODE_BEGIN

struct KeyBand {
  uint32_t lo, hi;  // {lo <= key <= hi}; hi is the band's top
};

struct BandStats {
  uint64_t total;  // W, in units where the band's top weighs 2^38
  double mean_d;   // E_q[d]
};

// The band's mass and mean distance below its top; `mass` is relative to the band's top.
template <class Ctx, class View>
FS_HOST_DEVICE BandStats band_stats(Ctx& ctx, const View& view, KeyBand band,
                                    const MassWeight& mass, const uint32_t* gmax) {
  uint64_t total = 0, sum_hi = 0, sum_lo = 0;
  for_each_chunk_reaching(ctx, view, gmax, band.lo, [&](const uint32_t* keys, int64_t, int n) {
    if (chunk_max(keys, n) < band.lo) return;
    float d[Ctx::kChunk], m[Ctx::kChunk];
    chunk_distance(keys, n, band.lo, band.hi, mass.temp, mass.z_max, d);
    chunk_mass(d, n, m);
    total += chunk_mass_sum(m, n);
    for (int j = 0; j < n; ++j) {
      const uint64_t w = mass_of(m[j]);
      // d is +inf outside the band, where w is 0.
      const uint64_t q = w != 0 ? uint64_t(double(d[j]) * 65536.0 + 0.5) : 0;
      const uint64_t wq = w * q;
      sum_hi += wq >> 32;
      sum_lo += wq & 0xffffffffu;
    }
  });
  total = ctx.sum_u64(total);
  sum_hi = ctx.sum_u64(sum_hi);
  sum_lo = ctx.sum_u64(sum_lo);
  const double sum = double(sum_hi) * 4294967296.0 + double(sum_lo);
  return BandStats{total, sum / 65536.0 / double(total)};
}

// A key's mass when it lies in the band (keys above its top weigh nothing).
struct BandMass {
  MassWeight mass;
  uint32_t hi;
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(uint32_t key) const {
    return key <= hi ? mass(key) : 0;
  }
};

// Typical-p's order: a key's distance g = d - t from the typical target, and as an order key
// (the float bits of |g| reversed, so that the closest rank highest in a descending select).
struct TypicalOrder {
  Temperature temp;
  float z_top;
  float t;
  FS_HOST_DEVICE FS_INLINE float signed_distance(uint32_t key) const {
    return (z_top - temp.z_of_finite_key(key)) - t;
  }
  FS_HOST_DEVICE FS_INLINE uint32_t operator()(uint32_t key) const {
    return 0xFFFFFFFFu - float_bits(fabsf(signed_distance(key)));
  }
};

// Typical-p: the tokens of the band closest to its typical z, t = E_q[d] below the top (-log q
// minus the entropy is d - t), fewest first until their mass reaches typical_p of the band's;
// every token as close as the last one is kept. g falls as the key rises, so {|g| <= r} is one
// interval of keys, found by bisection once the radix select has found r; its top is then
// lowered to the largest key a token holds, so that the band's top weighs 2^38 for the filters
// after it (a floor capped at the top's mass must not pass above every token).
template <class Ctx, class View>
FS_HOST_DEVICE KeyBand typical_band(Ctx& ctx, const View& view, KeyBand band, double typical_p,
                                    const Temperature& temp, const uint32_t* gmax) {
  const MassWeight mass{temp, temp.z_of_key(band.hi)};
  const BandStats stats = band_stats(ctx, view, band, mass, gmax);
  const TypicalOrder order{temp, mass.z_max, float(stats.mean_d)};
  const uint32_t cut = radix_select_any(ctx, view, band.lo, top_p_need(typical_p, stats.total),
                                       BandMass{mass, band.hi}, order);
  const float r = bits_float(0xFFFFFFFFu - cut);
  const uint32_t lo = first_key_where(band.lo, band.hi, [&](uint32_t key) {
    return order.signed_distance(key) <= r;
  });
  const uint32_t above = first_key_where(band.lo, band.hi, [&](uint32_t key) {
    return order.signed_distance(key) < -r;
  });
  // The token that reached the mass lies in [lo, above - 1]: the maximum is one of them.
  return KeyBand{lo, view_max_key_in(ctx, view, lo, above - 1, gmax)};
}

// The lowest key of the band whose mass reaches `need` units; when not even the top does (a
// cutoff above the top's probability), the top and its ties on mass, as transformers keeps
// min_tokens_to_keep = 1.
FS_HOST_DEVICE inline uint32_t mass_floor_key(KeyBand band, uint64_t need, const MassWeight& mass) {
  const uint64_t top = mass(band.hi);
  const uint64_t floor_units = need < top ? need : top;
  return first_key_where(band.lo, band.hi, [&](uint32_t key) { return mass(key) >= floor_units; });
}

FS_HOST_DEVICE inline bool reads_distribution(const RowParams& p) {
  return p.typical_p < 1.0 || p.epsilon_cutoff > 0.0f || p.eta_cutoff > 0.0f;
}

// Typical-p, then epsilon (keep q >= epsilon_cutoff), then eta (keep q >= min(eta, sqrt(eta) *
// exp(-H))), on `band`. Not inlined, for the reason n_sigma_distance gives (row_filters.h).
template <class Ctx, class View>
FS_HOST_DEVICE FS_NOINLINE KeyBand entropy_filters(Ctx& ctx, const View& view, KeyBand band,
                                                   const RowParams& p, float temperature,
                                                   const uint32_t* gmax) {
  const Temperature temp(temperature);
  if (p.typical_p < 1.0) band = typical_band(ctx, view, band, p.typical_p, temp, gmax);
  if (p.epsilon_cutoff > 0.0f) {
    const MassWeight mass{temp, temp.z_of_key(band.hi)};
    const uint64_t total =
        ctx.sum_u64(local_keep_set_mass(ctx, view, band.lo, band.hi, mass, gmax));
    band.lo = mass_floor_key(band, top_p_need(double(p.epsilon_cutoff), total), mass);
  }
  if (p.eta_cutoff > 0.0f) {
    const MassWeight mass{temp, temp.z_of_key(band.hi)};
    const BandStats stats = band_stats(ctx, view, band, mass, gmax);
    // min(eta, sqrt(eta) exp(-H)) x W units, with exp(-H) W = 2^38 exp(-E_q[d]).
    const double eps = double(p.eta_cutoff);
    const double by_eps = eps * double(stats.total);
    const double by_entropy = sqrt(eps) * double(uint64_t(1) << kMassFracBits) *
                              double(exp_nonpositive(-float(stats.mean_d)));
    band.lo = mass_floor_key(band, units_needed(by_eps < by_entropy ? by_eps : by_entropy,
                                                stats.total), mass);
  }
  return band;
}

FS_CODE_END
}  // namespace fastsample
