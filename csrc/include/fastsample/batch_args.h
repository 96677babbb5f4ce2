// A batch call as every backend receives it, and how a row's parameters and logits are read
// from it. Pointers are host memory for the CPU backend and device memory for CUDA.
#pragma once
#include "fastsample/row_edits.h"
#include "fastsample/row_logprobs.h"
#include "fastsample/row_params.h"
#include "fastsample/speculative.h"
#include "fastsample/views.h"

namespace fastsample {

// Outside the per-instruction-set namespaces: types that every backend object agrees on.

// One padded id list per row: row r holds ids[r * stride + j], j < len. Negative entries are
// padding. Ids >= V are ignored (Python rejects them first): a kernel never indexes out of bounds.
struct IdLists {
  const int64_t* ids = nullptr;
  int64_t stride = 0, len = 0;
};

// Stages 1-3 (hard masks, logit_bias, penalties); see row_edits.h.
struct EditArgs {
  bool enabled = false;                    // false: none of the below is read
  IdLists prompt, output;                  // penalty history
  const int32_t* output_counts = nullptr;  // one count per `output` entry (ids then unique per
                                           // row); null: every occurrence counts once
  FS_EDIT_PARAMETERS(FS_PARAMETER_SOURCE)  // penalties; min_tokens against num_generated
  IdLists bias;                            // logit_bias ids, values in bias_values (same layout)
  const float* bias_values = nullptr;
  IdLists sequences;                       // sequence_bias (sequence_bias.h), values in
  const float* sequence_values = nullptr;  // sequence_values (same layout)
  IdLists allowed, banned;
  IdLists stop;                            // EOS and stop ids: -inf while generated < min_tokens
  IdLists begin_suppress;                  // -inf while generated == 0 (the first token)
  IdLists dry_breakers;                    // DRY's sequence breakers (dry.h)
  const int32_t* bitmask = nullptr;        // [B, bitmask_stride] int32 words, bit set = allowed
  int64_t bitmask_stride = 0;
};

// How many ids stages 1-3 list for one row (the allow-list and the bitmask are masks).
FS_HOST_DEVICE inline int64_t listed_ids(const EditArgs& e) {
  return e.prompt.len + e.output.len + e.bias.len + e.sequences.len + e.banned.len + e.stop.len +
         e.begin_suppress.len;
}

// Stage 7 outputs (row_logprobs.h).
struct LogprobArgs {
  int32_t n = -1;                          // -1: off; else 0..20 top alternatives
  bool processed = false;                  // false: raw (log_softmax of the sanitized logits)
  float* out_logprob = nullptr;            // [B]
  int64_t* out_top_ids = nullptr;          // [B, n]
  float* out_top_logprobs = nullptr;       // [B, n]
  const int64_t* given_tokens = nullptr;   // prompt scoring: each row's token is given, not drawn
};

// Stages 4-6 per row (param_table.h).
struct FilterArgs {
  FS_FILTER_PARAMETERS(FS_PARAMETER_SOURCE)
};

struct BatchArgs {
  const void* logits = nullptr;
  DType dtype = DType::kFloat32;
  int64_t batch = 0, vocab = 0, row_stride = 0;  // row_stride in elements
  FilterArgs filters;  // seed.ptr may alias out_tokens (every row reads it before writing)
  int64_t* out_tokens = nullptr;  // sample: [batch]
  uint8_t* out_valid = nullptr;   // sample: [batch], optional
  float* out_logits = nullptr;    // process: [batch, out_row_stride]
  int64_t out_row_stride = 0;
  int num_threads = 0;            // CPU only; 0: the pool's size
  EditArgs edits;
  LogprobArgs logprobs;
  VerifyArgs verify;
};

// What a batch call does with each row; every backend instantiates its row loop once per task,
// so the verification's code never weighs on the sample kernels' registers.
enum class RowTask { kSample, kVerify, kProcess };

// A sample call's task: verification when it carries drafts.
inline RowTask sample_task(const BatchArgs& a) {
  return a.verify.draft_tokens != nullptr ? RowTask::kVerify : RowTask::kSample;
}

FS_CODE_BEGIN

FS_HOST_DEVICE inline RowParams batch_row_params(const BatchArgs& a, int64_t row) {
  RowParams p;
#define FS_READ_ROW(type, name, off) p.name = a.filters.name.at(row);
  FS_FILTER_PARAMETERS(FS_READ_ROW)
#undef FS_READ_ROW
  return normalize_params(p, a.vocab);
}

FS_HOST_DEVICE inline RowList batch_row_list(const IdLists& l, int64_t row) {
  return l.ids == nullptr ? RowList{nullptr, 0} : RowList{l.ids + row * l.stride, l.len};
}

FS_HOST_DEVICE inline RowEdits batch_row_edits(const BatchArgs& a, int64_t row) {
  const EditArgs& e = a.edits;
  RowEdits r;
  if (!e.enabled) return r;
  r.prompt = batch_row_list(e.prompt, row);
  r.output = batch_row_list(e.output, row);
  r.output_counts = e.output_counts ? e.output_counts + row * e.output.stride : nullptr;
  r.repetition = e.repetition_penalty.at(row);
  r.frequency = e.frequency_penalty.at(row);
  r.presence = e.presence_penalty.at(row);
  r.no_repeat_ngram = e.no_repeat_ngram_size.at(row);
  r.dry = DryParams{e.dry_multiplier.at(row), e.dry_base.at(row), e.dry_allowed_length.at(row),
                    e.dry_penalty_last_n.at(row), batch_row_list(e.dry_breakers, row)};
  r.bias = batch_row_list(e.bias, row);
  r.bias_values = e.bias_values ? e.bias_values + row * e.bias.stride : nullptr;
  if (r.bias_values == nullptr) r.bias.len = 0;
  r.sequences = batch_row_list(e.sequences, row);
  r.sequence_values =
      e.sequence_values ? e.sequence_values + row * e.sequences.stride : nullptr;
  r.allowed = batch_row_list(e.allowed, row);
  r.banned = batch_row_list(e.banned, row);
  if (e.num_generated.at(row) < e.min_tokens.at(row)) r.suppressed = batch_row_list(e.stop, row);
  if (e.num_generated.at(row) == 0) r.begin_suppressed = batch_row_list(e.begin_suppress, row);
  r.bitmask = e.bitmask ? e.bitmask + row * e.bitmask_stride : nullptr;
  return normalize_edits(r, a.vocab);
}

// Defined in row_sampler.h's terms; here so every backend fills it the same way.
template <class RowLogprobsT>
FS_HOST_DEVICE inline RowLogprobsT batch_row_logprobs(const BatchArgs& a, int64_t row) {
  RowLogprobsT lp;
  const LogprobArgs& l = a.logprobs;
  if (l.n < 0 || l.out_logprob == nullptr) return lp;
  lp.on = true;
  lp.processed = l.processed && l.given_tokens == nullptr;
  const int n = l.n > kMaxTopLogprobs ? kMaxTopLogprobs : l.n;
  lp.out = LogprobOut{l.out_logprob + row, l.out_top_ids + row * l.n,
                      l.out_top_logprobs + row * l.n, l.out_top_ids ? n : 0};
  return lp;
}

template <DType D>
FS_HOST_DEVICE inline RowView<D> batch_row_view(const BatchArgs& a, int64_t row) {
  using Elem = typename KeyLoader<D>::Elem;
  return RowView<D>{static_cast<const Elem*>(a.logits) + row * a.row_stride, a.vocab};
}

FS_CODE_END
}  // namespace fastsample
