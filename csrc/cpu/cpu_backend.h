// The CPU backend's entry points, one set per instruction-set level (see dispatch.cpp).
#pragma once
#include "fastsample/batch_args.h"
#include "fastsample/contrastive.h"

namespace fastsample::cpu {

using fastsample::BatchArgs;

#define FS_DECLARE_CPU_ISA(isa)                         \
  namespace isa {                                       \
  int64_t sample_batch(const BatchArgs& args);          \
  int64_t process_batch(const BatchArgs& args);         \
  void contrastive_batch(const ContrastiveArgs& args);  \
  }
FS_DECLARE_CPU_ISA(baseline)
FS_DECLARE_CPU_ISA(avx2)
#undef FS_DECLARE_CPU_ISA

// Runtime dispatch to the best level this CPU supports. Both return the number of rows that had
// no valid token.
int64_t sample_batch(const BatchArgs& args);
int64_t process_batch(const BatchArgs& args);
// Contrastive search's candidate scores (fastsample/contrastive.h) into args.out_scores.
void contrastive_batch(const ContrastiveArgs& args);
const char* simd_level();
// Whether edited rows are copied as keys before the filters read them (row_edits_dense.h):
// yes, unless FASTSAMPLE_CPU_EDITED_ROWS=patched (the tests run the CUDA kernels' way too).
bool edited_rows_dense();

}  // namespace fastsample::cpu
