#include "openmp_runtime.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace fastsample::cpu {
namespace {

// Names of OpenMP runtimes that export the GOMP entry points (GCC's own, and Intel's and
// LLVM's, which implement them for GCC-compiled code).
bool is_openmp_runtime(const char* path) {
  const char* base = std::strrchr(path, '/');
  base = base ? base + 1 : path;
  return std::strncmp(base, "libgomp", 7) == 0 || std::strncmp(base, "libiomp", 7) == 0 ||
         std::strncmp(base, "libomp", 6) == 0;
}

std::string& runtime_path() {
  static std::string path;
  return path;
}

int first_loaded(struct dl_phdr_info* info, size_t, void* out) {
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0' &&
      is_openmp_runtime(info->dlpi_name)) {
    *static_cast<std::string*>(out) = info->dlpi_name;
    return 1;  // stop: the first one loaded is the one torch's code is bound to
  }
  return 0;
}

struct Region {
  void (*fn)(void*, int, int);
  void* data;
  int (*thread_num)();
  int (*num_threads)();
};

void region_body(void* p) {
  const Region* r = static_cast<const Region*>(p);
  r->fn(r->data, r->thread_num(), r->num_threads());
}

}  // namespace

bool OpenMpRuntime::find(OpenMpRuntime* rt) {
  const char* choice = std::getenv("FASTSAMPLE_THREADING");
  if (choice != nullptr && std::strcmp(choice, "pool") == 0) return false;
  std::string path;
  dl_iterate_phdr(first_loaded, &path);
  if (path.empty()) return false;
  // Already loaded: RTLD_NOLOAD takes a reference to it and never loads a second copy.
  void* handle = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  rt->parallel_ = reinterpret_cast<Parallel>(dlsym(handle, "GOMP_parallel"));
  rt->thread_num_ = reinterpret_cast<IntFn>(dlsym(handle, "omp_get_thread_num"));
  rt->num_threads_ = reinterpret_cast<IntFn>(dlsym(handle, "omp_get_num_threads"));
  rt->max_threads_ = reinterpret_cast<IntFn>(dlsym(handle, "omp_get_max_threads"));
  rt->in_parallel_ = reinterpret_cast<IntFn>(dlsym(handle, "omp_in_parallel"));
  if (!rt->parallel_ || !rt->thread_num_ || !rt->num_threads_ || !rt->max_threads_ ||
      !rt->in_parallel_) {
    return false;
  }
  runtime_path() = path;
  rt->library_ = runtime_path().c_str();
  return true;
}

const OpenMpRuntime* OpenMpRuntime::loaded() {
  static OpenMpRuntime rt;
  static const bool found = find(&rt);
  return found ? &rt : nullptr;
}

void OpenMpRuntime::parallel(int threads, void (*fn)(void*, int, int), void* data) const {
  Region region{fn, data, thread_num_, num_threads_};
  parallel_(region_body, &region, unsigned(threads < 0 ? 0 : threads), 0);
}

}  // namespace fastsample::cpu
