// Picks the CPU kernels built for the best instruction set this machine has (no -march=native
// in what users build: each level is compiled separately and chosen at run time).
#include <cstdlib>
#include <cstring>

#include "cpu_backend.h"

namespace fastsample::cpu {
namespace {

bool patched_rows_forced() {
  const char* env = std::getenv("FASTSAMPLE_CPU_EDITED_ROWS");
  return env != nullptr && std::strcmp(env, "patched") == 0;
}
const bool kDenseEditedRows = !patched_rows_forced();

#if FASTSAMPLE_HAVE_AVX2_BUILD
bool has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

// FASTSAMPLE_SIMD=baseline forces the baseline kernels (tests run them this way too).
bool baseline_forced() {
  const char* env = std::getenv("FASTSAMPLE_SIMD");
  return env != nullptr && std::strcmp(env, "baseline") == 0;
}

const bool kUseAvx2 = has_avx2() && !baseline_forced();
#else
const bool kUseAvx2 = false;
#endif

}  // namespace

#if !FASTSAMPLE_HAVE_AVX2_BUILD
namespace avx2 {
int64_t sample_batch(const BatchArgs& a) { return baseline::sample_batch(a); }
int64_t process_batch(const BatchArgs& a) { return baseline::process_batch(a); }
void contrastive_batch(const ContrastiveArgs& a) { baseline::contrastive_batch(a); }
}  // namespace avx2
#endif

int64_t sample_batch(const BatchArgs& a) {
  return kUseAvx2 ? avx2::sample_batch(a) : baseline::sample_batch(a);
}
int64_t process_batch(const BatchArgs& a) {
  return kUseAvx2 ? avx2::process_batch(a) : baseline::process_batch(a);
}
void contrastive_batch(const ContrastiveArgs& a) {
  kUseAvx2 ? avx2::contrastive_batch(a) : baseline::contrastive_batch(a);
}
const char* simd_level() { return kUseAvx2 ? "avx2" : "baseline"; }
bool edited_rows_dense() { return kDenseEditedRows; }

}  // namespace fastsample::cpu
