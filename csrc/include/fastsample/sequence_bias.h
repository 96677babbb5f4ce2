// transformers' sequence_bias (SequenceBiasLogitsProcessor; its NoBadWordsLogitsProcessor is the
// same rule with a bias of -inf): a sequence's bias is added to its last token when the ids
// before that token end the history. A sequence of one token always applies.
#pragma once
#include "fastsample/history_ids.h"

namespace fastsample {
FS_CODE_BEGIN

// A row's sequences are the runs of valid ids in `l`, separated by padding; `values` holds each
// one's bias at its last id's position. Python groups them by last token, in the order
// transformers adds them up, so the worker that owns a group's first sequence sums the group's
// matching biases in list order (float32, from 0, as transformers builds its bias row) and
// calls add(token, sum, position of that first sequence's last id) once, only when some
// sequence of the group matches. Collective when l.len > 0.
// Cost: one pass over the list, and for each sequence a backward comparison with the history's
// end that stops at the first mismatch.
template <class Ctx, class Add>
FS_HOST_DEVICE void for_each_sequence_bias(Ctx& ctx, const RowList& l, const float* values,
                                           const HistoryIds& h, const Add& add) {
  if (l.len == 0) return;
  const HistoryEnd end = history_end(ctx, h);
  const int64_t vocab = h.vocab;
  const auto valid = [&](int64_t i) {
    return i >= 0 && i < l.len && l.ids[i] >= 0 && l.ids[i] < vocab;
  };
  int64_t b, e;
  ctx.segment(l.len, &b, &e);
  for (int64_t p = b; p < e; ++p) {
    if (!valid(p) || valid(p + 1)) continue;  // not a sequence's last id
    const int64_t t = l.ids[p];
    int64_t s = p;
    while (valid(s - 1)) --s;
    int64_t q = s - 1;
    while (q >= 0 && !valid(q)) --q;
    if (q >= 0 && l.ids[q] == t) continue;  // not its group's first sequence
    float sum = 0.0f;
    bool any = false;
    for (int64_t last = p;;) {  // the sequence [s, last]
      const int64_t m = last - s + 1;
      if (h.ends_with(end.last + 1, l.ids + s, m - 1)) {
        sum += values[last];
        any = true;
      }
      int64_t next = last + 1;
      while (next < l.len && !valid(next)) ++next;
      if (next >= l.len) break;
      int64_t next_last = next;
      while (valid(next_last + 1)) ++next_last;
      if (l.ids[next_last] != t) break;
      s = next;
      last = next_last;
    }
    if (any) add(t, sum, p);
  }
}

FS_CODE_END
}  // namespace fastsample
