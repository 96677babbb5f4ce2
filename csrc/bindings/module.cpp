// The one pybind11 layer. Tensors arrive as raw pointers, shapes and strides (no libtorch link);
// Python has validated everything already, these checks are the second line of defence.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "../cpu/cpu_backend.h"
#include "../cpu/id_checks.h"
#include "../cpu/thread_pool.h"
#include "batch_args_binding.h"
#include "fastsample/philox.h"
#ifdef FASTSAMPLE_WITH_CUDA
#include "../cuda/cuda_backend.h"
#endif

#ifndef FASTSAMPLE_VERSION
#define FASTSAMPLE_VERSION "0.0.0"
#endif
// fastsample._C; tests/cuda_emulation builds this file again as _cuda_emulated.
#ifndef FASTSAMPLE_CUDA_NOT_BUILT
// Builds other than CMakeLists.txt's _C (the sanitizer and emulation builds) say only this.
#define FASTSAMPLE_CUDA_NOT_BUILT "this build compiled no CUDA kernels"
#endif

#ifndef FASTSAMPLE_MODULE_NAME
#define FASTSAMPLE_MODULE_NAME _C
#endif

namespace py = pybind11;
using fastsample::BatchArgs;
using fastsample::bindings::Call;
using fastsample::bindings::checked;
using fastsample::bindings::joined;
using fastsample::bindings::require;

namespace {

// The CPU backend returns the number of rows without a valid token; the CUDA backend (which
// never waits for the device) leaves that to out_valid / the token -1.
int64_t cpu_sample(py::handle args, py::handle edits, py::handle logprobs) {
  const BatchArgs a = checked(joined(args, edits, logprobs), Call::kSample);
  py::gil_scoped_release release;
  return fastsample::cpu::sample_batch(a);
}

// Contrastive search's scoring arguments from raw pointers (fastsample/contrastive.h); Python
// (functional/contrastive.py) has checked shapes, dtypes and devices.
fastsample::ContrastiveArgs contrastive_args(uintptr_t context, uintptr_t candidates,
                                             uintptr_t mask, uintptr_t probs, uintptr_t keep,
                                             uintptr_t penalty, uintptr_t out, int64_t batch,
                                             int64_t length, int64_t k, int64_t dim,
                                             int64_t context_row_stride,
                                             int64_t context_pos_stride,
                                             int64_t candidate_row_stride,
                                             int64_t candidate_stride, int dtype) {
  require(batch >= 0 && length >= 1 && dim >= 1, "contrastive: need batch >= 0, length >= 1 "
          "and dim >= 1");
  require(k >= 1 && k <= fastsample::kMaxContrastiveCandidates,
          "contrastive: k must be in [1, " +
              std::to_string(fastsample::kMaxContrastiveCandidates) + "]");
  require(dtype >= 0 && dtype <= 2, "contrastive: unknown dtype code");
  require(batch == 0 || (context && candidates && mask && probs && keep && penalty && out),
          "contrastive: a null pointer");
  fastsample::ContrastiveArgs a;
  a.context = reinterpret_cast<const void*>(context);
  a.candidates = reinterpret_cast<const void*>(candidates);
  a.mask = reinterpret_cast<const uint8_t*>(mask);
  a.probs = reinterpret_cast<const float*>(probs);
  a.keep_weight = reinterpret_cast<const float*>(keep);
  a.penalty_weight = reinterpret_cast<const float*>(penalty);
  a.out_scores = reinterpret_cast<float*>(out);
  a.batch = batch;
  a.length = length;
  a.k = k;
  a.dim = dim;
  a.context_row_stride = context_row_stride;
  a.context_pos_stride = context_pos_stride;
  a.candidate_row_stride = candidate_row_stride;
  a.candidate_stride = candidate_stride;
  a.dtype = static_cast<fastsample::DType>(dtype);
  return a;
}

#define FS_CONTRASTIVE_PY_ARGS                                                              \
  py::arg("context"), py::arg("candidates"), py::arg("mask"), py::arg("probs"),            \
      py::arg("keep_weight"), py::arg("penalty_weight"), py::arg("out"), py::arg("batch"), \
      py::arg("length"), py::arg("k"), py::arg("dim"), py::arg("context_row_stride"),      \
      py::arg("context_pos_stride"), py::arg("candidate_row_stride"),                      \
      py::arg("candidate_stride"), py::arg("dtype")

int64_t cpu_process(py::handle args, py::handle edits) {
  const BatchArgs a = checked(joined(args, edits, py::none()), Call::kProcess);
  py::gil_scoped_release release;
  return fastsample::cpu::process_batch(a);
}

#ifdef FASTSAMPLE_WITH_CUDA
using Launch = std::string (*)(const BatchArgs&, void*, int64_t, uintptr_t);

void cuda_launch(Launch launch, const BatchArgs& a, uintptr_t workspace, int64_t blocks,
                 uintptr_t stream) {
  require(workspace != 0 || a.batch == 0, "workspace pointer is null");
  const std::string error = launch(a, reinterpret_cast<void*>(workspace), blocks, stream);
  if (!error.empty()) throw std::runtime_error("fastsample: CUDA kernel launch failed: " + error);
}

int64_t workspace_bytes(BatchArgs a) {
  fastsample::bindings::check_vocab(a.vocab);
  fastsample::bindings::check_edits(&a.edits, a.vocab);
  return fastsample::cuda::workspace_bytes_per_block(a);
}
#endif

}  // namespace

PYBIND11_MODULE(FASTSAMPLE_MODULE_NAME, m) {
  m.doc() = "fastsample compiled kernels (raw-pointer interface; use the fastsample package)";
  fastsample::bindings::bind_batch_args(m);
  m.def("cpu_sample", &cpu_sample, py::arg("args"), py::arg("edits") = py::none(),
        py::arg("logprobs") = py::none(),
        "Samples every row (BatchArgs, EditArgs or None, LogprobArgs or None); returns the "
        "number of rows without a valid token.");
  m.def("cpu_process", &cpu_process, py::arg("args"), py::arg("edits") = py::none(),
        "Writes every row's processed logits to args.out_logits; returns the invalid rows.");
  m.def("cpu_contrastive", [](uintptr_t context, uintptr_t candidates, uintptr_t mask,
                              uintptr_t probs, uintptr_t keep, uintptr_t penalty, uintptr_t out,
                              int64_t batch, int64_t length, int64_t k, int64_t dim, int64_t crs,
                              int64_t cps, int64_t krs, int64_t ks, int dtype) {
    const auto a = contrastive_args(context, candidates, mask, probs, keep, penalty, out, batch,
                                    length, k, dim, crs, cps, krs, ks, dtype);
    py::gil_scoped_release release;
    fastsample::cpu::contrastive_batch(a);
  }, FS_CONTRASTIVE_PY_ARGS, "Contrastive search's candidate scores into out (float32 [B, k]).");
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
  // Enqueued on `stream`; `workspace`: blocks x cuda_workspace_bytes(args) bytes of device memory.
  m.def("cuda_sample", [](py::handle args, py::handle edits, py::handle logprobs,
                          uintptr_t workspace, int64_t blocks, uintptr_t stream) {
    cuda_launch(&fastsample::cuda::launch_sample,
                checked(joined(args, edits, logprobs), Call::kSample), workspace, blocks, stream);
  }, py::arg("args"), py::arg("edits"), py::arg("logprobs"), py::kw_only(),
     py::arg("workspace"), py::arg("blocks"), py::arg("stream"));
  m.def("cuda_process", [](py::handle args, py::handle edits, uintptr_t workspace,
                           int64_t blocks, uintptr_t stream) {
    cuda_launch(&fastsample::cuda::launch_process,
                checked(joined(args, edits, py::none()), Call::kProcess), workspace, blocks,
                stream);
  }, py::arg("args"), py::arg("edits"), py::kw_only(), py::arg("workspace"), py::arg("blocks"),
     py::arg("stream"));
  // Enqueued on `stream` with `blocks` blocks (<= batch); no workspace.
  m.def("cuda_contrastive", [](uintptr_t context, uintptr_t candidates, uintptr_t mask,
                               uintptr_t probs, uintptr_t keep, uintptr_t penalty, uintptr_t out,
                               int64_t batch, int64_t length, int64_t k, int64_t dim, int64_t crs,
                               int64_t cps, int64_t krs, int64_t ks, int dtype, int64_t blocks,
                               uintptr_t stream) {
    const std::string error = fastsample::cuda::launch_contrastive(
        contrastive_args(context, candidates, mask, probs, keep, penalty, out, batch, length, k,
                         dim, crs, cps, krs, ks, dtype), blocks, stream);
    if (!error.empty()) throw std::runtime_error("fastsample: CUDA kernel launch failed: " + error);
  }, FS_CONTRASTIVE_PY_ARGS, py::kw_only(), py::arg("blocks"), py::arg("stream"));
  m.def("cuda_workspace_bytes", [](py::handle args, py::handle edits) {
    return workspace_bytes(joined(args, edits, py::none()));
  }, py::arg("args"), py::arg("edits") = py::none(),
     "Workspace bytes per block of a launch with these arguments.");
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
  m.attr("cuda_not_built") = FASTSAMPLE_CUDA_NOT_BUILT;
#endif
  m.attr("max_vocab") = fastsample::kMaxVocab;
}
