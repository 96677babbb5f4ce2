// The OpenMP runtime torch has already loaded (libgomp, or libiomp5 / libomp through their GOMP
// entry points), found at run time: fastsample's parallel regions run on torch's own OpenMP
// thread team instead of beside it. A decode step calls sample right after the model's forward
// pass, when those threads are still spinning for work: they take fastsample's rows at once,
// where threads of a second pool would fight them for the cores (docs/design.md, "CPU threads").
// Nothing is linked: the wheel stays independent of torch's build.
#pragma once

namespace fastsample::cpu {

class OpenMpRuntime {
 public:
  // The runtime loaded in this process, or null when there is none (torch built without
  // OpenMP, or not imported) or FASTSAMPLE_THREADING=pool asks for fastsample's own pool.
  // Looked up once, at the first call.
  static const OpenMpRuntime* loaded();

  // Runs fn(data, thread, threads) on a team of up to `threads` threads (0: the runtime's
  // default, torch.get_num_threads() for torch's main thread); the caller is thread 0. Returns
  // when every thread has. `threads` in the call is the team's actual size.
  void parallel(int threads, void (*fn)(void* data, int thread, int threads), void* data) const;
  // omp_get_max_threads(): what a region gets by default here (torch.get_num_threads()).
  int max_threads() const { return max_threads_(); }
  // omp_in_parallel(): inside a region (a nested one gets one thread).
  bool in_parallel() const { return in_parallel_() != 0; }
  const char* library() const { return library_; }

 private:
  using Parallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
  using IntFn = int (*)();
  Parallel parallel_ = nullptr;
  IntFn thread_num_ = nullptr, num_threads_ = nullptr, max_threads_ = nullptr,
        in_parallel_ = nullptr;
  const char* library_ = nullptr;
  static bool find(OpenMpRuntime* rt);
};

}  // namespace fastsample::cpu
