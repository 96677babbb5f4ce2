// The one pybind11 layer. Tensors arrive as raw pointers, shapes and strides (no libtorch link);
// Python has validated everything already, these checks are the second line of defence.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "../cpu/cpu_backend.h"
#include "../cpu/id_checks.h"
#include "../cpu/thread_pool.h"
#include "fastsample/philox.h"
#ifdef FASTSAMPLE_WITH_CUDA
#include "../cuda/cuda_backend.h"
#endif

#ifndef FASTSAMPLE_VERSION
#define FASTSAMPLE_VERSION "0.0.0"
#endif
// fastsample._C; tests/cuda_emulation builds this file again as _cuda_emulated.
#ifndef FASTSAMPLE_MODULE_NAME
#define FASTSAMPLE_MODULE_NAME _C
#endif

namespace py = pybind11;
using fastsample::DType;
using fastsample::BatchArgs;

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("fastsample._C: " + what);
}

BatchArgs batch_args(uintptr_t logits, int dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                     float temperature, uintptr_t temperature_ptr, int64_t top_k,
                     uintptr_t top_k_ptr, double top_p, uintptr_t top_p_ptr, float min_p,
                     uintptr_t min_p_ptr, int64_t seed, uintptr_t seed_ptr, int64_t offset,
                     uintptr_t offset_ptr, int num_threads) {
  require(logits != 0 || batch == 0, "logits pointer is null");
  require(dtype >= 0 && dtype <= 2, "dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  require(batch >= 0, "batch must be >= 0");
  require(vocab >= 1 && vocab <= fastsample::kMaxVocab, "vocab must be in [1, 2^25]");
  require(row_stride >= 0, "row stride must be >= 0");
  BatchArgs a;
  a.logits = reinterpret_cast<const void*>(logits);
  a.dtype = DType(dtype);
  a.batch = batch;
  a.vocab = vocab;
  a.row_stride = row_stride;
  a.temperature = {temperature, reinterpret_cast<const float*>(temperature_ptr)};
  a.top_k = {top_k, reinterpret_cast<const int64_t*>(top_k_ptr)};
  a.top_p = {top_p, reinterpret_cast<const double*>(top_p_ptr)};
  a.min_p = {min_p, reinterpret_cast<const float*>(min_p_ptr)};
  a.seed = {seed, reinterpret_cast<const int64_t*>(seed_ptr)};
  a.offset = {offset, reinterpret_cast<const int64_t*>(offset_ptr)};
  a.num_threads = num_threads;
  return a;
}

fastsample::IdLists id_lists(const py::tuple& t, size_t i, const char* what) {
  fastsample::IdLists l;
  l.ids = reinterpret_cast<const int64_t*>(t[i].cast<uintptr_t>());
  l.stride = t[i + 1].cast<int64_t>();
  l.len = t[i + 2].cast<int64_t>();
  require(l.len >= 0 && (l.ids == nullptr || l.stride >= l.len || l.stride == 0),
          std::string(what) + ": list length must be >= 0 and <= the row stride (or stride 0)");
  if (l.ids == nullptr) l.len = 0;
  return l;
}

template <class T>
fastsample::ParamSource<T> param_source(const py::tuple& t, size_t i) {
  return {t[i].cast<T>(), reinterpret_cast<const T*>(t[i + 1].cast<uintptr_t>())};
}

// Stages 1-3, in the order _edits.py packs them (None: no edits).
void set_edits(BatchArgs* a, const py::object& edits) {
  if (edits.is_none()) return;
  const py::tuple t = edits.cast<py::tuple>();
  require(t.size() == 32, "edits must be a 32-tuple");
  fastsample::EditArgs& e = a->edits;
  e.enabled = true;
  e.prompt = id_lists(t, 0, "prompt_token_ids");
  e.output = id_lists(t, 3, "output_token_ids");
  e.output_counts = reinterpret_cast<const int32_t*>(t[6].cast<uintptr_t>());
  e.repetition = param_source<float>(t, 7);
  e.frequency = param_source<float>(t, 9);
  e.presence = param_source<float>(t, 11);
  e.bias = id_lists(t, 13, "logit_bias");
  e.bias_values = reinterpret_cast<const float*>(t[16].cast<uintptr_t>());
  e.allowed = id_lists(t, 17, "allowed_token_ids");
  e.banned = id_lists(t, 20, "banned_token_ids");
  e.stop = id_lists(t, 23, "stop_token_ids");
  e.min_tokens = param_source<int64_t>(t, 26);
  e.num_generated = param_source<int64_t>(t, 28);
  e.bitmask = reinterpret_cast<const int32_t*>(t[30].cast<uintptr_t>());
  e.bitmask_stride = t[31].cast<int64_t>();
  // Row stride 0: one mask row for every row (an expanded tensor); Python checks the width.
  require(e.bitmask_stride >= 0, "token_bitmask row stride must be >= 0");
  require(e.bitmask == nullptr || e.bitmask_stride == 0 || e.bitmask_stride * 32 >= a->vocab,
          "token_bitmask rows must hold ceil(V / 32) words");
}

// Stage 7 outputs: (n, processed, logprob, top_ids, top_logprobs, given_tokens) or None.
void set_logprobs(BatchArgs* a, const py::object& logprobs) {
  if (logprobs.is_none()) return;
  const py::tuple t = logprobs.cast<py::tuple>();
  require(t.size() == 6, "logprobs must be a 6-tuple");
  fastsample::LogprobArgs& l = a->logprobs;
  l.n = t[0].cast<int32_t>();
  require(l.n >= 0 && l.n <= 20, "logprobs n must be in [0, 20]");
  l.processed = t[1].cast<bool>();
  l.out_logprob = reinterpret_cast<float*>(t[2].cast<uintptr_t>());
  l.out_top_ids = reinterpret_cast<int64_t*>(t[3].cast<uintptr_t>());
  l.out_top_logprobs = reinterpret_cast<float*>(t[4].cast<uintptr_t>());
  l.given_tokens = reinterpret_cast<const int64_t*>(t[5].cast<uintptr_t>());
  require(l.out_logprob != nullptr || a->batch == 0, "logprob output pointer is null");
  require(l.n == 0 || ((l.out_top_ids != nullptr && l.out_top_logprobs != nullptr) || a->batch == 0),
          "top logprob output pointers are null");
}

// The CPU backend counts rows without a valid token; the CUDA backend (which never waits for the
// device) leaves that to out_valid / the token -1.
int64_t cpu_sample(uintptr_t logits, int dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                   float temperature, uintptr_t temperature_ptr, int64_t top_k,
                   uintptr_t top_k_ptr, double top_p, uintptr_t top_p_ptr, float min_p,
                   uintptr_t min_p_ptr, int64_t seed, uintptr_t seed_ptr, int64_t offset,
                   uintptr_t offset_ptr, uintptr_t out_tokens,
                   uintptr_t out_valid, int num_threads, const py::object& edits,
                   const py::object& logprobs) {
  BatchArgs a = batch_args(logits, dtype, batch, vocab, row_stride, temperature, temperature_ptr,
                           top_k, top_k_ptr, top_p, top_p_ptr, min_p, min_p_ptr, seed, seed_ptr,
                           offset, offset_ptr, num_threads);
  require(out_tokens != 0 || batch == 0, "output tokens pointer is null");
  // seed_ptr may be out_tokens itself (the Python layer draws unseeded rows' seeds into the
  // output): every row's seed is read before any worker writes that row's token.
  a.out_tokens = reinterpret_cast<int64_t*>(out_tokens);
  a.out_valid = reinterpret_cast<uint8_t*>(out_valid);
  set_edits(&a, edits);
  set_logprobs(&a, logprobs);
  py::gil_scoped_release release;
  return fastsample::cpu::sample_batch(a);
}

int64_t cpu_process(uintptr_t logits, int dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                    float temperature, uintptr_t temperature_ptr, int64_t top_k,
                    uintptr_t top_k_ptr, double top_p, uintptr_t top_p_ptr, float min_p,
                    uintptr_t min_p_ptr, uintptr_t out_logits, int64_t out_row_stride,
                    int num_threads, const py::object& edits) {
  BatchArgs a = batch_args(logits, dtype, batch, vocab, row_stride, temperature, temperature_ptr,
                           top_k, top_k_ptr, top_p, top_p_ptr, min_p, min_p_ptr, 0, 0, 0, 0,
                           num_threads);
  require(out_logits != 0 || batch == 0, "output logits pointer is null");
  require(out_row_stride >= vocab, "output row stride must be >= vocab");
  a.out_logits = reinterpret_cast<float*>(out_logits);
  a.out_row_stride = out_row_stride;
  set_edits(&a, edits);
  py::gil_scoped_release release;
  return fastsample::cpu::process_batch(a);
}

#ifdef FASTSAMPLE_WITH_CUDA
void check_launch(const std::string& error) {
  if (!error.empty()) throw std::runtime_error("fastsample: CUDA kernel launch failed: " + error);
}

void cuda_sample(uintptr_t logits, int dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                 float temperature, uintptr_t temperature_ptr, int64_t top_k, uintptr_t top_k_ptr,
                 double top_p, uintptr_t top_p_ptr, float min_p, uintptr_t min_p_ptr, int64_t seed,
                 uintptr_t seed_ptr, int64_t offset, uintptr_t offset_ptr, uintptr_t out_tokens,
                 uintptr_t out_valid, uintptr_t workspace, int64_t blocks, uintptr_t stream,
                 const py::object& edits, const py::object& logprobs) {
  BatchArgs a = batch_args(logits, dtype, batch, vocab, row_stride, temperature, temperature_ptr,
                           top_k, top_k_ptr, top_p, top_p_ptr, min_p, min_p_ptr, seed, seed_ptr,
                           offset, offset_ptr, 0);
  require(out_tokens != 0 || batch == 0, "output tokens pointer is null");
  require(workspace != 0 || batch == 0, "workspace pointer is null");
  a.out_tokens = reinterpret_cast<int64_t*>(out_tokens);
  a.out_valid = reinterpret_cast<uint8_t*>(out_valid);
  set_edits(&a, edits);
  set_logprobs(&a, logprobs);
  check_launch(fastsample::cuda::launch_sample(a, reinterpret_cast<void*>(workspace), blocks,
                                               stream));
}

void cuda_process(uintptr_t logits, int dtype, int64_t batch, int64_t vocab, int64_t row_stride,
                  float temperature, uintptr_t temperature_ptr, int64_t top_k,
                  uintptr_t top_k_ptr, double top_p, uintptr_t top_p_ptr, float min_p,
                  uintptr_t min_p_ptr, uintptr_t out_logits, int64_t out_row_stride,
                  uintptr_t workspace, int64_t blocks, uintptr_t stream,
                  const py::object& edits) {
  BatchArgs a = batch_args(logits, dtype, batch, vocab, row_stride, temperature, temperature_ptr,
                           top_k, top_k_ptr, top_p, top_p_ptr, min_p, min_p_ptr, 0, 0, 0, 0, 0);
  require(out_logits != 0 || batch == 0, "output logits pointer is null");
  require(out_row_stride >= vocab, "output row stride must be >= vocab");
  require(workspace != 0 || batch == 0, "workspace pointer is null");
  a.out_logits = reinterpret_cast<float*>(out_logits);
  a.out_row_stride = out_row_stride;
  set_edits(&a, edits);
  check_launch(fastsample::cuda::launch_process(a, reinterpret_cast<void*>(workspace), blocks,
                                                stream));
}
#endif

}  // namespace

PYBIND11_MODULE(FASTSAMPLE_MODULE_NAME, m) {
  m.doc() = "fastsample compiled kernels (raw-pointer interface; use the fastsample package)";
  m.def("cpu_sample", &cpu_sample, py::arg("logits"), py::arg("dtype"), py::arg("batch"),
        py::arg("vocab"), py::arg("row_stride"), py::arg("temperature"), py::arg("temperature_ptr"),
        py::arg("top_k"), py::arg("top_k_ptr"), py::arg("top_p"), py::arg("top_p_ptr"),
        py::arg("min_p"), py::arg("min_p_ptr"), py::arg("seed"), py::arg("seed_ptr"),
        py::arg("offset"), py::arg("offset_ptr"), py::arg("out_tokens"), py::arg("out_valid"),
        py::arg("num_threads"), py::arg("edits") = py::none(), py::arg("logprobs") = py::none());
  m.def("cpu_process", &cpu_process, py::arg("logits"), py::arg("dtype"), py::arg("batch"),
        py::arg("vocab"), py::arg("row_stride"), py::arg("temperature"), py::arg("temperature_ptr"),
        py::arg("top_k"), py::arg("top_k_ptr"), py::arg("top_p"), py::arg("top_p_ptr"),
        py::arg("min_p"), py::arg("min_p_ptr"), py::arg("out_logits"), py::arg("out_row_stride"),
        py::arg("num_threads"), py::arg("edits") = py::none());
  m.def("philox_u64", [](uint64_t seed, uint64_t offset) {
    return fastsample::row_random_u64(seed, offset);
  });
  m.def("philox4x32_10", [](uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                            uint32_t k1) {
    const auto out = fastsample::philox4x32_10(fastsample::Philox4x32{{c0, c1, c2, c3}}, k0, k1);
    return py::make_tuple(out.v[0], out.v[1], out.v[2], out.v[3]);
  });
  m.def("set_num_threads", [](int n) {
    if (n < 0) throw std::invalid_argument("num_threads must be >= 0, got " + std::to_string(n));
    // Waits for a batch another thread is running, which may need the GIL to finish.
    py::gil_scoped_release release;
    fastsample::cpu::ThreadPool::instance().set_threads(n);
  });
  m.def("get_num_threads", [] { return fastsample::cpu::ThreadPool::instance().threads(); });
  m.def("cpu_threading", [] { return std::string(fastsample::cpu::ThreadPool::instance().backend()); });
  m.def("simd_level", [] { return std::string(fastsample::cpu::simd_level()); });
  m.def("cpu_edited_rows", [] {
    return std::string(fastsample::cpu::edited_rows_dense() ? "dense" : "patched");
  });
  m.def("first_id_out_of_range", [](uintptr_t ids, int64_t rows, int64_t cols, int64_t row_stride,
                                    int64_t vocab) {
    return fastsample::cpu::first_id_out_of_range(reinterpret_cast<const int64_t*>(ids), rows,
                                                  cols, row_stride, vocab);
  }, py::arg("ids"), py::arg("rows"), py::arg("cols"), py::arg("row_stride"), py::arg("vocab"));
  m.attr("version") = FASTSAMPLE_VERSION;
#ifdef FASTSAMPLE_WITH_CUDA
  m.attr("cuda_compiled") = true;
  m.def("cuda_sample", &cuda_sample);
  m.def("cuda_process", &cuda_process);
  m.def("cuda_workspace_bytes", [](int64_t vocab, const py::object& edits) {
    BatchArgs a;
    a.vocab = vocab;
    set_edits(&a, edits);
    return fastsample::cuda::workspace_bytes_per_block(vocab, a.edits.enabled,
                                                       fastsample::max_patches(a.edits, vocab));
  }, py::arg("vocab"), py::arg("edits") = py::none());
  m.def("cuda_device_count", &fastsample::cuda::device_count);
  m.def("cuda_runtime_status", [] {
    const fastsample::cuda::RuntimeStatus st = fastsample::cuda::runtime_status();
    return py::make_tuple(st.driver_version, st.runtime_version, st.devices, st.error);
  });
  m.def("cuda_resident_blocks_per_sm", &fastsample::cuda::resident_blocks_per_sm);
  m.attr("cuda_architectures") = FASTSAMPLE_CUDA_ARCHS;
#else
  m.attr("cuda_compiled") = false;
  m.attr("cuda_architectures") = "";
#endif
  m.attr("max_vocab") = fastsample::kMaxVocab;
}
