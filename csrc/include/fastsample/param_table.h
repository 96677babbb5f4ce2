// The per-row parameters, declared once. Each entry is X(type, name, off value): the kernels'
// row structs (RowParams, EditArgs), the batch structs that carry them (a scalar for the batch
// or one value per row) and the Python bindings are expanded from these lists, and the Python
// table (python/fastsample/kernel/param_table.py: ranges, stages, docs) is checked against them by
// tests/test_param_table.py. Names are the Python keywords.
#pragma once

// Stages 4-6: what RowParams holds (row_params.h normalizes it).
#define FS_FILTER_PARAMETERS(X)   \
  X(float, temperature, 1.0f)     \
  X(int64_t, top_k, 0)            \
  X(double, top_p, 1.0)           \
  X(float, min_p, 0.0f)           \
  X(float, top_n_sigma, 0.0f)     \
  X(double, typical_p, 1.0)       \
  X(float, epsilon_cutoff, 0.0f)  \
  X(float, eta_cutoff, 0.0f)      \
  X(float, xtc_threshold, 0.1f)   \
  X(float, xtc_probability, 0.0f) \
  X(int64_t, seed, 0)             \
  X(int64_t, offset, 0)

// Stages 1-3: the scalar inputs of the edits (row_edits.h); the id lists are EditArgs' own.
#define FS_EDIT_PARAMETERS(X)              \
  X(float, repetition_penalty, 1.0f)      \
  X(float, frequency_penalty, 0.0f)       \
  X(float, presence_penalty, 0.0f)        \
  X(float, dry_multiplier, 0.0f)          \
  X(float, dry_base, 1.75f)               \
  X(int64_t, dry_allowed_length, 2)       \
  X(int64_t, dry_penalty_last_n, -1)      \
  X(int64_t, no_repeat_ngram_size, 0)     \
  X(int64_t, min_tokens, 0)               \
  X(int64_t, num_generated, 0)

// A struct field per entry, set to its off value.
#define FS_PARAMETER_FIELD(type, name, off) type name = off;
// A batch field per entry: the off value for every row until set.
#define FS_PARAMETER_SOURCE(type, name, off) ParamSource<type> name{off, nullptr};
