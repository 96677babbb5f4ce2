// Fixed-point masses over a band of keys {lo <= key <= hi}: the weight of one key, a worker's
// share of the band's total, the number of units a fraction of it needs, and counts of keys.
// The filters (row_filters.h, entropy_filters.h), the draw and the logprobs share them.
#pragma once
#include "fastsample/chunk_loops.h"
#include "fastsample/radix_select.h"

namespace fastsample {
FS_CODE_BEGIN

// Mass of a key relative to z_max (the row maximum, or the top of the keep-set), as fixed point.
struct MassWeight {
  Temperature temp;
  float z_max;
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(uint32_t key) const {
    return mass_fixed(z_max - temp.z_of_key(key));
  }
};

template <class Ctx, class View>
FS_HOST_DEVICE uint64_t view_count_at_least(Ctx& ctx, const View& view, uint32_t lo) {
  uint64_t local = 0;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
    local += chunk_count_at_least(keys, n, lo);
  });
  return ctx.sum_u64(local);
}

// The number of keys in [lo, hi] over the view (the whole context).
template <class Ctx, class View>
FS_HOST_DEVICE uint64_t view_count_in(Ctx& ctx, const View& view, uint32_t lo, uint32_t hi) {
  uint64_t local = 0;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
    uint32_t c = 0;
    for (int j = 0; j < n; ++j) c += keys[j] >= lo && keys[j] <= hi ? 1u : 0u;
    local += c;
  });
  return ctx.sum_u64(local);
}

// for_each_chunk over the chunks that can hold a key >= lo: given the view's group maxima
// (gmax), the others are not read.
template <class Ctx, class View, class Visit>
FS_HOST_DEVICE FS_INLINE void for_each_chunk_reaching(Ctx& ctx, const View& view,
                                                      const uint32_t* gmax, uint32_t lo,
                                                      const Visit& visit) {
  if (gmax != nullptr) {
    ctx.for_each_chunk_at_least(view, gmax, lo, visit);
  } else {
    ctx.for_each_chunk(view, visit);
  }
}

// The largest key in [lo, hi] over the view (the whole context); the view holds one. gmax: the
// view's group maxima, or null.
template <class Ctx, class View>
FS_HOST_DEVICE uint32_t view_max_key_in(Ctx& ctx, const View& view, uint32_t lo, uint32_t hi,
                                        const uint32_t* gmax) {
  uint32_t most = 0;
  for_each_chunk_reaching(ctx, view, gmax, lo, [&](const uint32_t* keys, int64_t, int n) {
    for (int j = 0; j < n; ++j) {
      const uint32_t key = keys[j];
      most = key >= lo && key <= hi && key > most ? key : most;
    }
  });
  return uint32_t(-ctx.min_i64(-int64_t(most)));
}

// This worker's share of the mass of {lo <= key <= hi} relative to mass.z_max, as fixed point;
// the draw's first pass. gmax: the view's group maxima, or null.
template <class Ctx, class View>
FS_HOST_DEVICE uint64_t local_keep_set_mass(Ctx& ctx, const View& view, uint32_t lo, uint32_t hi,
                                            const MassWeight& mass,
                                            const uint32_t* gmax = nullptr) {
  uint64_t local = 0;
  for_each_chunk_reaching(ctx, view, gmax, lo, [&](const uint32_t* keys, int64_t, int n) {
    if (chunk_max(keys, n) < lo) return;
    float d[Ctx::kChunk], m[Ctx::kChunk];
    chunk_distance(keys, n, lo, hi, mass.temp, mass.z_max, d);
    chunk_mass(d, n, m);
    local += chunk_mass_sum(m, n);
  });
  return local;
}

// ceil(want) units, at least one and at most the total.
FS_HOST_DEVICE inline uint64_t units_needed(double want, uint64_t total) {
  uint64_t need = want > 0.0 ? uint64_t(want) : 0;
  if (double(need) < want) ++need;
  if (need < 1) need = 1;
  if (need > total) need = total;
  return need;
}

// need = ceil(p * total) units: the smallest set whose mass is >= p of the whole
// (1 <= need <= total).
FS_HOST_DEVICE inline uint64_t top_p_need(double top_p, uint64_t total) {
  return units_needed(top_p * double(total), total);
}

FS_CODE_END
}  // namespace fastsample
