// One row, end to end: keep-set (row_filters.h), then the draw (stage 6) or the processed logits.
#pragma once
#include "fastsample/philox.h"
#include "fastsample/row_filters.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowSample {
  int64_t token;  // -1 when the row has no valid token
  bool valid;
};

// Inverse CDF over the keep-set in token order, with integer masses: the token depends only on
// the row's logits, parameters, seed and offset.
template <class Ctx, class View>
FS_HOST_DEVICE int64_t draw_from_keep_set(Ctx& ctx, const View& view, const RowKeep& keep,
                                          const RowParams& p) {
  const Temperature temp(p.temperature);
  const MassWeight mass{temp, temp.z_of_key(keep.max_key)};
  uint64_t local = 0;
  ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t, int n) {
    if (chunk_max(keys, n) < keep.lo_key) return;
    float d[Ctx::kChunk], w[Ctx::kChunk];
    chunk_distance(keys, n, keep.lo_key, temp, mass.z_max, d);
    chunk_mass_float(d, n, w);
    for (int j = 0; j < n; ++j) {
      if (keys[j] >= keep.lo_key) local += mass_fixed_from_float(w[j]);
    }
  });
  uint64_t total = 0;
  const uint64_t before = ctx.exclusive_scan_u64(local, &total);
  const uint64_t target = scale_u64(row_random_u64(p.seed, p.offset), total);
  int64_t found = INT64_MAX;
  if (target >= before && target < before + local) {
    uint64_t cum = before;
    ctx.for_each_chunk(view, [&](const uint32_t* keys, int64_t first, int n) {
      if (found != INT64_MAX || chunk_max(keys, n) < keep.lo_key) return;
      for (int j = 0; j < n; ++j) {
        if (keys[j] >= keep.lo_key) {
          cum += mass(keys[j]);
          if (cum > target) {
            found = view.token(first + j);
            break;
          }
        }
      }
    });
  }
  return ctx.min_i64(found);
}

// Small top-k: one pass gathers every key >= tau, where tau comes from a strided sample and is
// expected to sit well below the k-th largest; the rest runs on that short list. Returns false
// when the list cannot be trusted (too few, too many, or a bound reached below tau).
template <class Ctx, DType D>
FS_HOST_DEVICE bool keep_set_from_candidates(Ctx& ctx, const RowView<D>& row, const RowParams& p,
                                             const RowScratch& scratch, RowKeep* keep,
                                             ListView* list) {
  const int64_t n = row.size();
  uint32_t tau = kNegInfKey + 1;
  if (n > kFastListCap) {
    const int64_t stride = n / kThresholdSample;
    const StridedView<D> sample{row, stride, n / stride};
    uint64_t rank = uint64_t(2 * p.top_k * sample.size() / n + 8);
    if (rank > view_count_at_least(ctx, sample, kNegInfKey + 1)) return false;
    tau = radix_select_desc(ctx, sample, kNegInfKey + 1, rank, CountWeight{});
  }
  const int64_t count = ctx.compact(
      row, [&](uint32_t key) { return key >= tau; }, scratch.cand_keys, scratch.cand_tokens,
      kFastListCap);
  if (count > kFastListCap) return false;
  if (count <= p.top_k && tau != kNegInfKey + 1) return false;
  *list = ListView{scratch.cand_keys, scratch.cand_tokens, count};
  *keep = row_keep_set(ctx, *list, p, tau, scratch);
  return keep->lo_key >= tau || !keep->valid;
}

template <class Ctx, DType D>
FS_HOST_DEVICE RowSample sample_row(Ctx& ctx, const RowView<D>& row, const RowParams& p,
                                    const RowScratch& scratch) {
  RowKeep keep;
  ListView list{};
  const bool small_k = p.temperature > 0.0f && p.top_k > 0 && p.top_k <= kFastTopKMax;
  if (small_k && keep_set_from_candidates(ctx, row, p, scratch, &keep, &list)) {
    if (!keep.valid) return RowSample{-1, false};
    return RowSample{draw_from_keep_set(ctx, list, keep, p), true};
  }
  keep = row_keep_set(ctx, row, p, 0u, scratch);
  if (!keep.valid) return RowSample{-1, false};
  if (keep.greedy) return RowSample{keep.argmax, true};
  return RowSample{draw_from_keep_set(ctx, row, keep, p), true};
}

// process_logits: z where kept, -inf elsewhere (greedy rows keep their argmax, unscaled).
template <class Ctx, DType D>
FS_HOST_DEVICE bool process_row(Ctx& ctx, const RowView<D>& row, const RowParams& p,
                                const RowScratch& scratch, float* out) {
  RowKeep keep;
  ListView list{};
  const bool small_k = p.temperature > 0.0f && p.top_k > 0 && p.top_k <= kFastTopKMax;
  if (!(small_k && keep_set_from_candidates(ctx, row, p, scratch, &keep, &list))) {
    keep = row_keep_set(ctx, row, p, 0u, scratch);
  }
  const float neg_inf = bits_float(kNegInfBits);
  if (!keep.valid || keep.greedy) {
    ctx.for_each_chunk(row, [&](const uint32_t* keys, int64_t first, int n) {
      for (int j = 0; j < n; ++j) {
        out[first + j] = (keep.valid && first + j == keep.argmax) ? key_to_float(keys[j]) : neg_inf;
      }
    });
    return keep.valid;
  }
  const Temperature temp(p.temperature);
  ctx.for_each_chunk(row, [&](const uint32_t* keys, int64_t first, int n) {
    for (int j = 0; j < n; ++j) {
      out[first + j] = keys[j] >= keep.lo_key ? temp.z_of_key(keys[j]) : neg_inf;
    }
  });
  return true;
}

FS_CODE_END
}  // namespace fastsample
