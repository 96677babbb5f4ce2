// One row's sampling parameters, normalized so that no value can make a kernel misbehave.
// Python validates and rejects bad values first; this is the second line of defence.
#pragma once
#include "fastsample/common.h"
#include "fastsample/param_table.h"

namespace fastsample {
FS_CODE_BEGIN

// temperature 0 = greedy; top_k <= 0 or >= V: off; top_p >= 1: off (double: users write
// decimal p (0.8), and a float (0.800000012) would need more mass than they asked for);
// min_p <= 0: off; top_n_sigma <= 0: off; typical_p >= 1: off (double, like top_p);
// epsilon_cutoff, eta_cutoff <= 0: off; xtc_probability <= 0: off (xtc_threshold clamped to
// [0, 1]); seed and offset: the row's Philox stream.
struct RowParams {
  FS_FILTER_PARAMETERS(FS_PARAMETER_FIELD)
};

FS_HOST_DEVICE inline RowParams normalize_params(RowParams p, int64_t vocab) {
  // NaN or negative temperature is never produced by the Python layer; treat it as greedy.
  if (!(p.temperature >= 0.0f) || p.temperature > 3.4e38f) p.temperature = 0.0f;
  if (p.top_k <= 0 || p.top_k >= vocab) p.top_k = 0;
  if (!(p.top_p < 1.0)) p.top_p = 1.0;
  if (!(p.top_p > 0.0)) p.top_p = 1e-30;     // smallest non-empty nucleus: the top token
  if (!(p.min_p > 0.0f)) p.min_p = 0.0f;
  if (p.min_p > 1.0f) p.min_p = 1.0f;
  if (!(p.top_n_sigma > 0.0f) || p.top_n_sigma > 3.4e38f) p.top_n_sigma = 0.0f;
  if (!(p.typical_p < 1.0)) p.typical_p = 1.0;
  if (!(p.typical_p > 0.0)) p.typical_p = 1e-30;  // the single most typical token
  if (!(p.epsilon_cutoff > 0.0f)) p.epsilon_cutoff = 0.0f;
  if (p.epsilon_cutoff > 1.0f) p.epsilon_cutoff = 1.0f;
  if (!(p.eta_cutoff > 0.0f)) p.eta_cutoff = 0.0f;
  if (p.eta_cutoff > 1.0f) p.eta_cutoff = 1.0f;
  if (!(p.xtc_probability > 0.0f)) p.xtc_probability = 0.0f;
  if (p.xtc_probability > 1.0f) p.xtc_probability = 1.0f;
  if (!(p.xtc_threshold >= 0.0f)) p.xtc_threshold = 1.0f;  // NaN: no token can reach it
  if (p.xtc_threshold > 1.0f) p.xtc_threshold = 1.0f;
  return p;
}

// A filter whose bound reads statistics of the whole row (not only its top): such a row takes
// one more pass over all of it (its keep-set may still come from a top-k candidate list).
FS_HOST_DEVICE inline bool reads_whole_row(const RowParams& p) { return p.top_n_sigma > 0.0f; }

FS_CODE_END
}  // namespace fastsample
