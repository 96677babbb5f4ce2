// BatchArgs and its parts (batch_args.h) as Python types with named fields (struct_type.h),
// and the checks every entry point runs on them. Pointers cross as integers
// (tensor.data_ptr(); 0 = none); a per-row parameter is two fields: `name` (the batch's
// value) and `name_rows` (a pointer to one value per row, or 0). The per-row parameters'
// fields are expanded from param_table.h.
#pragma once
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "fastsample/batch_args.h"
#include "struct_type.h"

namespace fastsample::bindings {

namespace py = pybind11;

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("fastsample._C: " + what);
}

// The fields of struct S (an alias in the scope where they are listed): a plain field, a
// ParamSource as `name` and `name_rows` (`member`: its path in S), a padded id list as
// `name_ids`, `name_stride` and `name_len`.
#define FS_FIELD(type, name) field<S, type>(#name, offsetof(S, name))
#define FS_SOURCE(type, name, member)                   \
  field<S, type>(#name, offsetof(S, member.scalar)),    \
      field<S, const type*>(#name "_rows", offsetof(S, member.ptr)),
#define FS_VERIFY(type, name) field<S, type>(#name, offsetof(S, verify.name))
#define FS_FILTER_SOURCE(type, name, off) FS_SOURCE(type, name, filters.name)
#define FS_EDIT_SOURCE(type, name, off) FS_SOURCE(type, name, name)
#define FS_LISTS(name)                                              \
  field<S, const int64_t*>(#name "_ids", offsetof(S, name.ids)),    \
      field<S, int64_t>(#name "_stride", offsetof(S, name.stride)), \
      field<S, int64_t>(#name "_len", offsetof(S, name.len)),

// EditArgs' padded id lists (IdLists members).
#define FS_ID_LISTS(X) \
  X(prompt) X(output) X(bias) X(sequences) X(allowed) X(banned) X(stop) X(begin_suppress) \
      X(dry_breakers)

// `type`, the Python type of struct S named fastsample._C.<name>.
#ifdef FASTSAMPLE_ARG_TYPES_FROM
// A second module built from these sources (tests/cuda_emulation) takes the package's types.
#define FS_STRUCT_TYPE(name, ...) \
  type(py::module_::import(FASTSAMPLE_ARG_TYPES_FROM).attr(name))
#else
#define FS_STRUCT_TYPE(name, ...) type("fastsample._C." name, __VA_ARGS__)
#endif

// BatchArgs without its edits and logprobs, which cross as EditArgs / LogprobArgs objects
// beside it (`joined` puts them together).
inline const StructType<BatchArgs>& batch_args_type() {
  using S = BatchArgs;
  static const StructType<S> FS_STRUCT_TYPE("BatchArgs",
      "One kernel call: the [batch, vocab] logits (dtype 0 float32, 1 float16, 2 bfloat16; "
      "row_stride in elements), stages 4-6 parameters (`name` the batch's value, `name_rows` a "
      "pointer to one per row or 0), the outputs and, on CPU, the threads (0: the pool's "
      "size); a verification's drafts (draft_tokens 0: a plain sample).",
      {FS_FIELD(const void*, logits), FS_FIELD(DType, dtype), FS_FIELD(int64_t, batch),
       FS_FIELD(int64_t, vocab),
       FS_FIELD(int64_t, row_stride), FS_FILTER_PARAMETERS(FS_FILTER_SOURCE)
       FS_FIELD(int64_t*, out_tokens), FS_FIELD(uint8_t*, out_valid),
       FS_FIELD(float*, out_logits), FS_FIELD(int64_t, out_row_stride),
       FS_FIELD(int32_t, num_threads), FS_VERIFY(const int64_t*, draft_tokens),
       FS_VERIFY(const int64_t*, parents), FS_VERIFY(int64_t, draft_stride),
       FS_VERIFY(int64_t, num_drafts), FS_VERIFY(const float*, draft_probs),
       FS_VERIFY(int64_t, probs_request_stride), FS_VERIFY(int64_t, probs_draft_stride),
       FS_VERIFY(int64_t*, out_child)});
  return type;
}

inline const StructType<EditArgs>& edit_args_type() {
  using S = EditArgs;
  static const StructType<S> FS_STRUCT_TYPE("EditArgs",
      "Stages 1-3 (masks, logit_bias, penalties). Id lists: `x_ids` points to [B, x_stride] "
      "int64 ids (-1 padding; stride 0: one list for every row), x_len of them per row. "
      "enabled False: nothing here is read.",
      {FS_FIELD(bool, enabled), FS_ID_LISTS(FS_LISTS) FS_FIELD(const int32_t*, output_counts),
       FS_FIELD(const float*, bias_values), FS_FIELD(const float*, sequence_values),
       FS_FIELD(const int32_t*, bitmask),
       FS_FIELD(int64_t, bitmask_stride), FS_EDIT_PARAMETERS(FS_EDIT_SOURCE)});
  return type;
}

inline const StructType<LogprobArgs>& logprob_args_type() {
  using S = LogprobArgs;
  static const StructType<S> FS_STRUCT_TYPE("LogprobArgs",
      "Stage 7: n -1 (off) or 0..20; out_logprob [B], out_top_ids / out_top_logprobs [B, n]; "
      "given_tokens [B] (prompt scoring) or 0.",
      {FS_FIELD(int32_t, n), FS_FIELD(bool, processed), FS_FIELD(float*, out_logprob),
       FS_FIELD(int64_t*, out_top_ids), FS_FIELD(float*, out_top_logprobs),
       FS_FIELD(const int64_t*, given_tokens)});
  return type;
}
#undef FS_FIELD
#undef FS_SOURCE
#undef FS_VERIFY
#undef FS_FILTER_SOURCE
#undef FS_EDIT_SOURCE
#undef FS_LISTS
#undef FS_STRUCT_TYPE

inline void bind_batch_args(py::module_& m) {
  batch_args_type().add_to(m, "BatchArgs");
  edit_args_type().add_to(m, "EditArgs");
  logprob_args_type().add_to(m, "LogprobArgs");

  // The C++ side of the parameter table, for the test that holds the Python table to it.
  m.def("row_parameters", [] {
    py::list out;
#define FS_DESCRIBE(group)                                     \
  [&out](const char* name, const char* type, double off) {     \
    out.append(py::make_tuple(group, name, type, off));        \
  }
    auto filter = FS_DESCRIBE("filter");
    auto edit = FS_DESCRIBE("edit");
#undef FS_DESCRIBE
#define FS_FILTER(type, name, off) filter(#name, #type, double(off));
#define FS_EDIT(type, name, off) edit(#name, #type, double(off));
    FS_FILTER_PARAMETERS(FS_FILTER)
    FS_EDIT_PARAMETERS(FS_EDIT)
#undef FS_FILTER
#undef FS_EDIT
    return out;
  });
}

// One call's arguments from its Python objects (edits, logprobs: None or the objects).
inline BatchArgs joined(py::handle args, py::handle edits, py::handle logprobs) {
  BatchArgs a = batch_args_type().unbox(args, "args");
  if (!edits.is_none()) a.edits = edit_args_type().unbox(edits, "edits");
  if (!logprobs.is_none()) a.logprobs = logprob_args_type().unbox(logprobs, "logprobs");
  return a;
}

inline void check_lists(IdLists* l, const char* name) {
  require(l->len >= 0 && (l->ids == nullptr || l->stride >= l->len || l->stride == 0),
          std::string("EditArgs.") + name + ": len must be >= 0 and <= stride (or stride 0), got len " +
              std::to_string(l->len) + ", stride " + std::to_string(l->stride));
  if (l->ids == nullptr) l->len = 0;
}

inline void check_vocab(int64_t vocab) {
  require(vocab >= 1 && vocab <= kMaxVocab,
          "BatchArgs.vocab must be in [1, 2^25], got " + std::to_string(vocab));
}

inline void check_edits(EditArgs* e, int64_t vocab) {
  if (!e->enabled) return;
#define FS_CHECK_LISTS(name) check_lists(&e->name, #name);
  FS_ID_LISTS(FS_CHECK_LISTS)
#undef FS_CHECK_LISTS
  // Row stride 0: one mask row for every row (an expanded tensor).
  require(e->bitmask_stride >= 0, "EditArgs.bitmask_stride must be >= 0");
  require(e->bitmask == nullptr || e->bitmask_stride == 0 || e->bitmask_stride * 32 >= vocab,
          "EditArgs.bitmask rows must hold ceil(V / 32) words");
}

enum class Call { kSample, kProcess };

inline void check_verify(BatchArgs& a, Call call) {
  VerifyArgs& v = a.verify;
  if (call == Call::kProcess) v = VerifyArgs{};
  if (v.draft_tokens == nullptr) return;
  require(v.num_drafts >= 0 && v.draft_stride >= v.num_drafts,
          "VerifyArgs: num_drafts must be >= 0 and <= draft_stride");
  require(a.batch % (v.num_drafts + 1) == 0,
          "VerifyArgs: batch must be a multiple of num_drafts + 1 (one row per node)");
  require(v.out_child != nullptr || a.batch == 0, "VerifyArgs.out_child is null");
  require(v.draft_probs == nullptr || (v.probs_request_stride >= 0 && v.probs_draft_stride >= a.vocab),
          "VerifyArgs: draft_probs rows must hold vocab entries");
  require(a.logprobs.given_tokens == nullptr, "VerifyArgs: prompt scoring cannot verify drafts");
}

// The second line of defence (Python validated everything already): the arguments made such
// that no kernel can read out of bounds with them, or std::invalid_argument naming the field.
inline BatchArgs checked(BatchArgs a, Call call) {
  const int32_t dtype = int32_t(a.dtype);
  require(dtype >= 0 && dtype <= 2, "BatchArgs.dtype=" + std::to_string(dtype) +
                                        " must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  require(a.batch >= 0, "BatchArgs.batch must be >= 0, got " + std::to_string(a.batch));
  check_vocab(a.vocab);
  require(a.row_stride >= 0, "BatchArgs.row_stride must be >= 0");
  require(a.logits != nullptr || a.batch == 0, "BatchArgs.logits is null");
  if (call == Call::kSample) {
    require(a.out_tokens != nullptr || a.batch == 0, "BatchArgs.out_tokens is null");
  } else {
    require(a.out_logits != nullptr || a.batch == 0, "BatchArgs.out_logits is null");
    require(a.out_row_stride >= a.vocab, "BatchArgs.out_row_stride must be >= vocab");
  }
  check_edits(&a.edits, a.vocab);
  check_verify(a, call);
  LogprobArgs& l = a.logprobs;
  if (call == Call::kProcess) l = LogprobArgs{};
  require(l.n >= -1 && l.n <= 20, "LogprobArgs.n must be -1 (off) or in [0, 20], got " +
                                      std::to_string(l.n));
  if (l.n >= 0 && a.batch > 0) {
    require(l.out_logprob != nullptr, "LogprobArgs.out_logprob is null");
    require(l.n == 0 || (l.out_top_ids != nullptr && l.out_top_logprobs != nullptr),
            "LogprobArgs.out_top_ids / out_top_logprobs are null");
  }
  require(l.given_tokens == nullptr || l.n >= 0,
          "LogprobArgs.given_tokens needs logprobs on (n >= 0): scoring writes logprobs only");
  return a;
}

#undef FS_ID_LISTS

}  // namespace fastsample::bindings
