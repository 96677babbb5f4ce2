// One row, end to end: keep-set (row_filters.h), then the draw (stage 6) or the processed logits.
#pragma once
#include "fastsample/philox.h"
#include "fastsample/row_edits.h"
#include "fastsample/row_edits_dense.h"
#include "fastsample/row_logprobs.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowSample {
  int64_t token;  // -1 when the row has no valid token
  bool valid;
};

struct RowDraw {
  int64_t token;
  // Fixed-point mass of the keep-set (its top, hi_key, weighs 2^38): the processed normalizer.
  uint64_t total;
};

// The weight the draw gives a kept token: its fixed-point mass (every sample), or what a
// speculative verification's rejections leave of it (speculative.h, Residual).
struct MassItself {
  static constexpr bool kIsMass = true;
  FS_HOST_DEVICE FS_INLINE uint64_t operator()(int64_t, uint64_t mass) const { return mass; }
};

// This worker's share of the keep-set's weight (the draw's first pass). gmax: the view's group
// maxima, or null.
template <class Ctx, class View, class Weight>
FS_HOST_DEVICE uint64_t local_keep_set_weight(Ctx& ctx, const View& view, const RowKeep& keep,
                                              const MassWeight& mass, const Weight& weight,
                                              const uint32_t* gmax) {
  if constexpr (Weight::kIsMass) {
    return local_keep_set_mass(ctx, view, keep.lo_key, keep.hi_key, mass, gmax);
  } else {
    uint64_t local = 0;
    for_each_chunk_reaching(ctx, view, gmax, keep.lo_key,
                            [&](const uint32_t* keys, int64_t first, int n) {
      if (chunk_max(keys, n) < keep.lo_key) return;
      float d[Ctx::kChunk], m[Ctx::kChunk];
      chunk_distance(keys, n, keep.lo_key, keep.hi_key, mass.temp, mass.z_max, d);
      chunk_mass(d, n, m);
      for (int j = 0; j < n; ++j) local += weight(view.token(first + j), mass_of(m[j]));
    });
    return local;
  }
}

// The keep-set's mass relative to its top (the top weighs 2^38): its processed normalizer.
template <class Ctx, class View>
FS_HOST_DEVICE uint64_t keep_set_total(Ctx& ctx, const View& view, const RowKeep& keep,
                                       const RowParams& p, const uint32_t* gmax) {
  const Temperature temp(p.temperature);
  const MassWeight mass{temp, temp.z_of_key(keep.hi_key)};
  return ctx.sum_u64(local_keep_set_weight(ctx, view, keep, mass, MassItself{}, gmax));
}

// Inverse CDF over the keep-set in token order, with integer weights (by default the masses):
// the token depends only on the row's logits, parameters, seed and offset. The second pass
// skips whole chunks by their weight and looks inside only the one where the cumulative weight
// passes the target. Given the view's group maxima (gmax), neither pass reads a group that
// holds no kept token. The returned total is the keep-set's total weight.
template <class Ctx, class View, class Weight = MassItself>
FS_HOST_DEVICE RowDraw draw_from_keep_set(Ctx& ctx, const View& view, const RowKeep& keep,
                                          const RowParams& p, const uint32_t* gmax = nullptr,
                                          const Weight& weight = Weight{}) {
  const Temperature temp(p.temperature);
  const MassWeight mass{temp, temp.z_of_key(keep.hi_key)};
  const uint64_t local = local_keep_set_weight(ctx, view, keep, mass, weight, gmax);
  uint64_t total = 0;
  const uint64_t before = ctx.exclusive_scan_u64(local, &total);
  const uint64_t target = scale_u64(row_random_u64(uint64_t(p.seed), uint64_t(p.offset)), total);
  int64_t found = INT64_MAX;
  if (target >= before && target < before + local) {
    uint64_t cum = before;
    for_each_chunk_reaching(ctx, view, gmax, keep.lo_key,
                            [&](const uint32_t* keys, int64_t first, int n) {
      if (found != INT64_MAX || chunk_max(keys, n) < keep.lo_key) return;
      float d[Ctx::kChunk], m[Ctx::kChunk];
      chunk_distance(keys, n, keep.lo_key, keep.hi_key, temp, mass.z_max, d);
      chunk_mass(d, n, m);
      uint64_t sum = 0;
      if constexpr (Weight::kIsMass) {
        sum = chunk_mass_sum(m, n);
      } else {
        for (int j = 0; j < n; ++j) sum += weight(view.token(first + j), mass_of(m[j]));
      }
      if (cum + sum <= target) {
        cum += sum;
        return;
      }
      for (int j = 0; j < n; ++j) {
        cum += weight(view.token(first + j), mass_of(m[j]));
        if (cum > target) {
          found = view.token(first + j);
          break;
        }
      }
    });
  }
  found = ctx.min_i64(found);
  // No token reached the target only if the keep-set has no weight: then there is none to draw.
  return RowDraw{found == INT64_MAX ? -1 : found, total};
}

// A lower bound on the k-th largest of the group maxima, within 2^-16 of their spread (at
// least k of them are finite). The smallest of k block maxima (the groups cut into k blocks)
// already has k group maxima at or above it, so only those, a few times k rather than every
// group, go through the radix select; its two 8-bit digits below the bits they all share bound
// the k-th largest closely enough. `own`: this worker's scratch (its bin list is free here).
template <class Solo>
FS_HOST_DEVICE uint32_t kth_group_max_bound(Solo& solo, const KeysView& groups, int64_t k,
                                            const RowScratch& own) {
  const int64_t block = groups.size() / k;
  int64_t b0, b1;
  solo.segment(k, &b0, &b1);
  int64_t smallest = INT64_MAX;
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t last = b == k - 1 ? groups.size() : (b + 1) * block;
    uint32_t block_max = 0;
    for (int64_t g = b * block; g < last; ++g) {
      block_max = groups.keys[g] > block_max ? groups.keys[g] : block_max;
    }
    smallest = int64_t(block_max) < smallest ? int64_t(block_max) : smallest;
  }
  const uint32_t floor_key = uint32_t(solo.min_i64(smallest));
  const uint32_t lo = floor_key > kNegInfKey + 1 ? floor_key : kNegInfKey + 1;
  const int64_t n_above = solo.compact(groups, lo, [](uint32_t) { return true; }, own.bin_keys,
                                       own.bin_tokens, own.bin_cap, nullptr);
  if (n_above > own.bin_cap) {
    return radix_select_desc<8>(solo, groups, kNegInfKey + 1, uint64_t(k), CountWeight{}, 2);
  }
  return radix_select_desc<8>(solo, KeysView{own.bin_keys, n_above}, lo, uint64_t(k),
                              CountWeight{}, 2);
}

// Small top-k: the k-th largest group maximum is a lower bound tau on the k-th largest key (k
// groups each hold an element >= it), so the top-k set lies in {key >= tau}, found by reading
// only the groups whose maximum reaches tau. Returns false when that list cannot be used (more
// than kFastListCap elements, fewer than k groups, or a bound reached below tau).
template <class Ctx, class View>
FS_HOST_DEVICE bool keep_set_from_candidates(Ctx& ctx, const View& row, const RowParams& p,
                                             const RowMax& m, double sigma_below,
                                             const RowScratch& scratch, RowKeep* keep,
                                             ListView* list) {
  auto solo = ctx.solo();
  const RowScratch own = ctx.solo_scratch(scratch);
  const KeysView groups{scratch.group_max, num_groups(row.size())};
  if (view_count_at_least(solo, groups, kNegInfKey + 1) < uint64_t(p.top_k)) return false;
  const uint32_t tau = kth_group_max_bound(solo, groups, p.top_k, own);
  const int64_t count = ctx.compact(
      row, tau, [](uint32_t) { return true; }, scratch.cand_keys, scratch.cand_tokens,
      kFastListCap, scratch.group_max);
  if (count > kFastListCap) return false;
  *list = ListView{scratch.cand_keys, scratch.cand_tokens, count};
  *keep = row_keep_set(solo, *list, p, tau, m, nullptr, own, sigma_below);
  return keep->lo_key >= tau;
}

// Stages 4-5 for one row: the keep-set, over a candidate list when top-k is small.
template <class Ctx, class View>
FS_HOST_DEVICE RowKeep row_keep_set_fast(Ctx& ctx, const View& row, const RowParams& p,
                                         const RowScratch& scratch, ListView* list,
                                         bool* on_list) {
  const RowMax m = row_max(ctx, row, scratch.group_max);
  const bool sampled = p.temperature > 0.0f && m.key > kNegInfKey;
  // top-n-sigma's bound reads every finite logit: one pass over the whole row, whose result
  // then holds on a candidate list as on the row.
  const double sigma_below =
      sampled && p.top_n_sigma > 0.0f
          ? n_sigma_distance(ctx, row, key_to_float(m.key), p.top_n_sigma)
          : 0.0;
  RowKeep keep;
  const bool small_k = sampled && p.top_k > 0 && p.top_k <= kFastTopKMax;
  *on_list =
      small_k && keep_set_from_candidates(ctx, row, p, m, sigma_below, scratch, &keep, list);
  if (!*on_list) keep = row_keep_set(ctx, row, p, 0u, m, scratch.group_max, scratch, sigma_below);
  return keep;
}

// Stage 7 as one row asks for it.
struct RowLogprobs {
  bool on = false;
  bool processed = false;
  LogprobOut out{};
};

// Processed logprobs: log_softmax of z over the keep-set (one-hot for greedy rows).
template <class Ctx, class View>
FS_HOST_DEVICE void processed_logprobs(Ctx& ctx, const View& row, const RowParams& p,
                                       const RowKeep& keep, const RowDraw& draw, bool on_list,
                                       const ListView& list, const RowScratch& scratch,
                                       const LogprobOut& out) {
  uint32_t keys[kMaxTopLogprobs];
  int64_t tokens[kMaxTopLogprobs];
  if (!keep.valid || draw.token < 0) {
    write_logprobs(ctx, out, LogSoftmax{Temperature(1.0f), 0.0, 0.0}, -1, 0, nullptr, nullptr, 0);
    return;
  }
  const Temperature temp(keep.greedy ? 1.0f : p.temperature);
  const double z_max = temp.z_of_key(keep.hi_key);
  if (keep.greedy) {
    // The keep-set is {argmax}: logprob 0 for it, -inf for every other token.
    keys[0] = keep.max_key;
    tokens[0] = keep.argmax;
    write_logprobs(ctx, out, LogSoftmax{temp, z_max, 0.0}, keep.argmax, keep.max_key, keys,
                   tokens, out.n > 0 ? 1 : 0);
    return;
  }
  const uint32_t top = keep.hi_key < keep.max_key ? keep.hi_key : kNoUpperKey;
  const int found =
      on_list ? select_top_n(list, out.n, keep.lo_key, keep.hi_key, keys, tokens)
              : row_top_n(ctx, row, out.n, keep.lo_key, top, scratch.group_max, scratch, keys,
                          tokens);
  write_logprobs(ctx, out, LogSoftmax{temp, z_max, log_mass(draw.total)}, draw.token,
                 row.key(draw.token), keys, tokens, found);
}

// Raw logprobs of an unedited row: its maximum and group maxima are known, and so is its mass
// when top-p summed the whole row at T = 1.
template <class Ctx, DType D>
FS_HOST_DEVICE void row_raw_logprobs(Ctx& ctx, const RowView<D>& row, const RowParams& p,
                                     const RowKeep& keep, int64_t token,
                                     const RowScratch& scratch, const LogprobOut& out) {
  const bool summed = p.temperature == 1.0f && keep.row_mass != 0;
  raw_logprobs(ctx, row, token, scratch.group_max, RowMax{keep.max_key, keep.argmax}, scratch,
               out, summed ? log_mass(keep.row_mass) : kUnknownLogMass);
}

// Raw logprobs of an edited row (PatchedView or DenseView): those of the logits it came from.
template <class Ctx, class EditedView>
FS_HOST_DEVICE void row_raw_logprobs(Ctx& ctx, const EditedView& row, const RowParams& p,
                                     const RowKeep& keep, int64_t token,
                                     const RowScratch& scratch, const LogprobOut& out) {
  const RowMax m = max_of_groups(ctx, row.raw, row.raw_gmax);
  const double log_total =
      p.temperature == 1.0f && keep.row_mass != 0
          ? raw_log_mass_from_edits(ctx, row, keep.row_mass, keep.max_key, m.key, scratch)
          : kUnknownLogMass;
  raw_logprobs(ctx, row.raw, token, row.raw_gmax, m, scratch, out, log_total);
}

// One row after stages 0-3 (`row`: the logits, or the logits under patches): the keep-set, the
// draw, and stage 7 when asked.
template <class Ctx, class View>
FS_HOST_DEVICE RowSample sample_view(Ctx& ctx, const View& row, const RowParams& p,
                                     const RowScratch& scratch, const RowLogprobs& lp) {
  ListView list{};
  bool on_list = false;
  const RowKeep keep = row_keep_set_fast(ctx, row, p, scratch, &list, &on_list);
  RowDraw draw{-1, 0};
  if (keep.valid && keep.greedy) {
    draw.token = keep.argmax;
  } else if (keep.valid && on_list) {
    auto solo = ctx.solo();
    draw = draw_from_keep_set(solo, list, keep, p);
  } else if (keep.valid) {
    draw = draw_from_keep_set(ctx, row, keep, p, scratch.group_max);
  }
  if (lp.on && lp.processed) {
    processed_logprobs(ctx, row, p, keep, draw, on_list, list, scratch, lp.out);
  } else if (lp.on) {
    row_raw_logprobs(ctx, row, p, keep, draw.token, scratch, lp.out);
  }
  // A row is valid only with a token to show for it.
  return RowSample{draw.token, keep.valid && draw.token >= 0};
}

// on_view(row) for the row after stages 0-3: the logits themselves when the row has no edits,
// else the edited row (copied as keys where the backend has room for them, else the logits
// under patches). record: the copy also keeps what raw logprobs at T = 1 read
// (row_raw_logprobs).
template <class Ctx, DType D, class OnView>
FS_HOST_DEVICE auto with_edited_view(Ctx& ctx, const RowView<D>& raw, const RowEdits& edits,
                                     const RowScratch& scratch, bool record,
                                     const OnView& on_view) {
  if (edits.any) {
    if constexpr (Ctx::kDenseEdits) {
      if (scratch.dense_keys != nullptr) {
        return on_view(edit_row_dense(ctx, raw, edits, scratch, record));
      }
    }
    return on_view(edit_row(ctx, raw, edits, scratch));
  }
  return on_view(raw);
}

// Whether raw logprobs at T = 1 will correct the edited row's mass (row_raw_logprobs).
FS_HOST_DEVICE inline bool records_raw_mass(const RowLogprobs& lp, const RowParams& p) {
  return lp.on && !lp.processed && p.temperature == 1.0f;
}

// One row end to end: stages 0-3 when the row has edits, then sample_view.
template <class Ctx, DType D>
FS_HOST_DEVICE RowSample sample_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& edits,
                                    const RowParams& p, const RowScratch& scratch,
                                    const RowLogprobs& lp) {
  return with_edited_view(ctx, raw, edits, scratch, records_raw_mass(lp, p),
                          [&](const auto& row) { return sample_view(ctx, row, p, scratch, lp); });
}

// Prompt scoring: the token is given; only raw logprobs are computed.
template <class Ctx, DType D>
FS_HOST_DEVICE RowSample score_row(Ctx& ctx, const RowView<D>& raw, int64_t token,
                                   const RowScratch& scratch, const LogprobOut& out) {
  if (token < 0 || token >= raw.size()) token = -1;
  raw_logprobs(ctx, raw, token, scratch.group_max, row_max(ctx, raw, scratch.group_max), scratch,
               out);
  return RowSample{token, token >= 0 && raw.key(token) > kNegInfKey};
}

// process_logits: z where kept, -inf elsewhere (greedy rows keep their argmax, unscaled).
template <class Ctx, class View>
FS_HOST_DEVICE bool process_view(Ctx& ctx, const View& row, const RowParams& p,
                                const RowScratch& scratch, float* out) {
  ListView list{};
  bool on_list = false;
  const RowKeep keep = row_keep_set_fast(ctx, row, p, scratch, &list, &on_list);
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
      // A valid row's lo_key is above -inf.
      const bool kept = keys[j] >= keep.lo_key && keys[j] <= keep.hi_key;
      out[first + j] = kept ? temp.z_of_finite_key(keys[j]) : neg_inf;
    }
  });
  return true;
}

// process_logits for one row, after stages 0-3 when the row has edits.
template <class Ctx, DType D>
FS_HOST_DEVICE bool process_row(Ctx& ctx, const RowView<D>& raw, const RowEdits& edits,
                                const RowParams& p, const RowScratch& scratch, float* out) {
  return with_edited_view(ctx, raw, edits, scratch, false, [&](const auto& row) {
    return process_view(ctx, row, p, scratch, out);
  });
}

FS_CODE_END
}  // namespace fastsample
