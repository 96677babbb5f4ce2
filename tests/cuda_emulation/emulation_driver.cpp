// A standalone run of the emulated CUDA kernels, small enough for ThreadSanitizer (.ci/
// build_emulator builds it plain and with -fsanitize=thread; tests/test_cuda_emulation.py runs
// both). First it checks that the emulation's checks are live (a divergent barrier, a thread that
// returns early, a partial warp mask each fail the launch); then a few batches with every stage
// (edits, logprobs, per-row parameters, blocks reused across rows) must equal the baseline CPU
// kernels bit for bit. Prints one line per check; exit code 1 on any failure.
#include "cuda_host_emulation.h"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/cpu/cpu_backend.h"
#include "cuda_backend.h"

namespace {

int failures = 0;

void report(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

void expect_failure(const std::string& error, const char* needle, const std::string& what) {
  report(error.find(needle) != std::string::npos, what + " -> \"" + error + "\"");
}

struct Shared {
  int words[8];
};

void checks_are_live() {
  expect_failure(fs_emu::launch<Shared>(2, 64, 1, [](Shared*) {
                   if (threadIdx.x < 32) {
                     __syncthreads();
                   } else {
                     __syncthreads();
                   }
                 }),
                 "different call sites", "divergent __syncthreads");
  expect_failure(fs_emu::launch<Shared>(1, 64, 2, [](Shared*) {
                   if (threadIdx.x == 5) return;
                   __syncthreads();
                 }),
                 "returned", "a thread returns before a barrier");
  expect_failure(fs_emu::launch<Shared>(1, 64, 3, [](Shared*) {
                   __ballot_sync(0xffffu, 1);
                 }),
                 "partial mask", "a ballot with a partial mask");
  expect_failure(fs_emu::launch<Shared>(1, 64, 4, [](Shared*) {
                   if (threadIdx.x % 32 != 7) __ballot_sync(0xffffffffu, 1);
                 }),
                 "returned", "a lane skips a warp collective");
  report(fs_emu::launch<Shared>(3, 64, 5, [](Shared* s) {
           // Each block's shared storage is its own: a race across blocks would show here.
           if (threadIdx.x == 0) s->words[0] = int(blockIdx.x);
           __syncthreads();
           if (s->words[0] != int(blockIdx.x)) throw fs_emu::EmulationError("shared mixed up");
         }).empty(),
         "blocks own their shared storage");
}

// One batch: float32 logits with ties and -inf, per-row filters, optional edits and logprobs.
struct Case {
  const char* name;
  int64_t batch, vocab;
  bool edits, logprobs, process;
  fastsample::DType dtype;
};

std::vector<unsigned char> logits_bytes(const Case& c, std::mt19937& rng) {
  const size_t elem = c.dtype == fastsample::DType::kFloat32 ? 4 : 2;
  std::vector<unsigned char> out(size_t(c.batch * c.vocab) * elem);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t i = 0; i < c.batch * c.vocab; ++i) {
    float v = (i % 97 == 0) ? -INFINITY : std::round(normal(rng) * 4) / 4;  // ties
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    if (elem == 4) {
      std::memcpy(&out[size_t(i) * 4], &bits, 4);
    } else {
      // float16 / bfloat16 patterns from the top half of a float (a valid bfloat16; as float16
      // it is some other finite-or-not value, which is as good a test input).
      const uint16_t half = uint16_t(bits >> 16);
      std::memcpy(&out[size_t(i) * 2], &half, 2);
    }
  }
  return out;
}

bool same_bytes(const void* a, const void* b, size_t n) { return std::memcmp(a, b, n) == 0; }

void compare(const Case& c) {
  std::mt19937 rng(uint32_t(c.vocab * 31 + c.batch));
  const std::vector<unsigned char> logits = logits_bytes(c, rng);
  std::vector<float> temperature(c.batch), min_p(c.batch, 0.02f), repetition(c.batch);
  std::vector<int64_t> top_k(c.batch), seed(c.batch);
  std::vector<double> top_p(c.batch);
  for (int64_t r = 0; r < c.batch; ++r) {
    temperature[r] = r == 1 ? 0.0f : 0.5f + 0.25f * float(r % 4);
    top_k[r] = r % 3 == 0 ? 0 : 20 * r;
    top_p[r] = r % 2 ? 0.9 : 1.0;
    seed[r] = int64_t(rng() % 1000000);
    repetition[r] = 1.0f + 0.1f * float(r);
  }
  const int64_t listed = 16;
  std::vector<int64_t> prompt(size_t(c.batch * listed)), banned(size_t(c.batch * listed)),
      bias_ids(size_t(c.batch * 4));
  std::vector<float> bias_values(size_t(c.batch * 4), 3.0f);
  for (auto& t : prompt) t = int64_t(rng() % uint32_t(c.vocab));
  for (auto& t : banned) t = int64_t(rng() % uint32_t(c.vocab));
  for (auto& t : bias_ids) t = int64_t(rng() % uint32_t(c.vocab));

  fastsample::BatchArgs a;
  a.logits = logits.data();
  a.dtype = c.dtype;
  a.batch = c.batch;
  a.vocab = c.vocab;
  a.row_stride = c.vocab;
  a.filters.temperature = {1.0f, temperature.data()};
  a.filters.top_k = {0, top_k.data()};
  a.filters.top_p = {1.0, top_p.data()};
  a.filters.min_p = {0.0f, min_p.data()};
  a.filters.seed = {0, seed.data()};
  a.filters.offset = {7, nullptr};
  a.num_threads = 1;
  if (c.edits) {
    a.edits.enabled = true;
    a.edits.prompt = {prompt.data(), listed, listed};
    a.edits.repetition_penalty = {1.0f, repetition.data()};
    a.edits.banned = {banned.data(), listed, listed / 2};
    a.edits.bias = {bias_ids.data(), 4, 4};
    a.edits.bias_values = bias_values.data();
  }
  const int32_t n = c.logprobs ? 5 : -1;
  struct Out {
    std::vector<int64_t> tokens, top_ids;
    std::vector<uint8_t> valid;
    std::vector<float> logprob, top_logprobs, logits;
  };
  const auto run = [&](bool emulated, Out* o) {
    fastsample::BatchArgs b = a;
    o->tokens.assign(size_t(c.batch), -2);
    o->valid.assign(size_t(c.batch), 2);
    o->logprob.assign(size_t(c.batch), 0.0f);
    o->top_ids.assign(size_t(c.batch * 5), 0);
    o->top_logprobs.assign(size_t(c.batch * 5), 0.0f);
    o->logits.assign(size_t(c.batch * c.vocab), 0.0f);
    b.out_tokens = o->tokens.data();
    b.out_valid = o->valid.data();
    b.out_logits = o->logits.data();
    b.out_row_stride = c.vocab;
    if (n >= 0) {
      b.logprobs.n = n;
      b.logprobs.processed = true;
      b.logprobs.out_logprob = o->logprob.data();
      b.logprobs.out_top_ids = o->top_ids.data();
      b.logprobs.out_top_logprobs = o->top_logprobs.data();
    }
    if (!emulated) {
      if (c.process) {
        fastsample::cpu::baseline::process_batch(b);
      } else {
        fastsample::cpu::baseline::sample_batch(b);
      }
      return std::string();
    }
    const int64_t blocks = c.batch < 3 ? c.batch : 3;
    std::vector<unsigned char> ws(size_t(blocks * fastsample::cuda::workspace_bytes_per_block(b)));
    return c.process ? fastsample::cuda::launch_process(b, ws.data(), blocks, 0)
                     : fastsample::cuda::launch_sample(b, ws.data(), blocks, 0);
  };
  Out cpu, emu;
  run(false, &cpu);
  const std::string error = run(true, &emu);
  bool ok = error.empty();
  if (c.process) {
    ok = ok && same_bytes(cpu.logits.data(), emu.logits.data(), cpu.logits.size() * 4);
  } else {
    ok = ok && cpu.tokens == emu.tokens && cpu.valid == emu.valid && same_bytes(cpu.logprob.data(), emu.logprob.data(),
                                                      cpu.logprob.size() * 4) &&
         cpu.top_ids == emu.top_ids &&
         same_bytes(cpu.top_logprobs.data(), emu.top_logprobs.data(),
                    cpu.top_logprobs.size() * 4);
  }
  report(ok, std::string(c.name) + (error.empty() ? "" : ": " + error));
}

}  // namespace

int main() {
  checks_are_live();
  const Case cases[] = {
      {"sample f32 B=5 V=4099, filters per row", 5, 4099, false, false, false,
       fastsample::DType::kFloat32},
      {"sample bf16 B=4 V=1000, edits + processed logprobs", 4, 1000, true, true, false,
       fastsample::DType::kBFloat16},
      {"sample f16 B=4 V=257, edits", 4, 257, true, false, false, fastsample::DType::kFloat16},
      {"process f32 B=4 V=3000, edits", 4, 3000, true, false, true, fastsample::DType::kFloat32},
  };
  for (const Case& c : cases) compare(c);
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
