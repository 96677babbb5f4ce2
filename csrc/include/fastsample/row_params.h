// One row's sampling parameters, normalized so that no value can make a kernel misbehave.
// Python validates and rejects bad values first; this is the second line of defence.
#pragma once
#include "fastsample/common.h"

namespace fastsample {
FS_CODE_BEGIN

struct RowParams {
  float temperature = 1.0f;  // 0 = greedy
  int64_t top_k = 0;         // <= 0 or >= V: off
  double top_p = 1.0;        // >= 1: off. Double: users write decimal p (0.8), and a float
                             // (0.800000012) would need more mass than they asked for.
  float min_p = 0.0f;        // <= 0: off
  uint64_t seed = 0;
  uint64_t offset = 0;
};

FS_HOST_DEVICE inline RowParams normalize_params(RowParams p, int64_t vocab) {
  // NaN or negative temperature is never produced by the Python layer; treat it as greedy.
  if (!(p.temperature >= 0.0f) || p.temperature > 3.4e38f) p.temperature = 0.0f;
  if (p.top_k <= 0 || p.top_k >= vocab) p.top_k = 0;
  if (!(p.top_p < 1.0)) p.top_p = 1.0;
  if (!(p.top_p > 0.0)) p.top_p = 1e-30;     // smallest non-empty nucleus: the top token
  if (!(p.min_p > 0.0f)) p.min_p = 0.0f;
  if (p.min_p > 1.0f) p.min_p = 1.0f;
  return p;
}

FS_CODE_END
}  // namespace fastsample
