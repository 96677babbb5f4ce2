#include "thread_pool.h"

#include <cstdlib>
#include <string>

#include "openmp_runtime.h"

namespace fastsample::cpu {
namespace {

constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kCountMask = kClosed - 1;

uint64_t entry_generation(uint64_t e) { return e >> 32; }

// A job starting this soon after the previous one ended comes from a tight loop (Workers::kAwake)
// and finds the workers still spinning.
constexpr std::chrono::microseconds kRecentJob{200};
// How long a worker spins after it leaves a job before it sleeps: longer than kRecentJob, since
// a worker may leave a job before the caller does.
constexpr std::chrono::microseconds kSpin{300};
// For this long a spinning worker keeps its core; after it, it yields the core to any other
// runnable thread (torch's, between decode steps) on every check.
constexpr std::chrono::microseconds kHotSpin{50};

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int env_threads() {
  if (const char* env = std::getenv("FASTSAMPLE_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return 0;
}

}  // namespace

int hardware_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : int(hw);
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() : openmp_(OpenMpRuntime::loaded()), requested_(env_threads()) {}

ThreadPool::~ThreadPool() { stop_all(); }

int ThreadPool::threads() const {
  const int requested = requested_.load(std::memory_order_relaxed);
  if (requested > 0) return requested;
  if (openmp_ != nullptr) {
    const int n = openmp_->max_threads();
    return n < 1 ? 1 : n;
  }
  return hardware_threads();
}

const char* ThreadPool::backend() const {
  static const std::string name =
      openmp_ != nullptr ? std::string("openmp ") + openmp_->library() : std::string("pool");
  return name.c_str();
}

void ThreadPool::set_threads(int n) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  requested_.store(n < 0 ? 0 : n);
  // The pool's workers start again, as many as the next job needs.
  stop_all();
}

void ThreadPool::stop_all() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  stop_.store(false);
}

void ThreadPool::start_workers(int n) {
  // New workers start at the current generation: the last job's function is gone.
  const uint64_t now = generation_.load();
  for (int i = int(threads_.size()) + 1; i < n; ++i) {
    threads_.emplace_back([this, i, now] { worker_loop(i, now); });
  }
}

void ThreadPool::worker_loop(int id, uint64_t seen) {
  for (;;) {
    // Spin first, for a time rather than a count of iterations (whose length varies with the
    // CPU): a caller in a tight loop comes back within microseconds, and waking a sleeping
    // thread costs tens of them.
    const auto spin_start = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      cpu_relax();
      if (++spins % 64 != 0) continue;
      const auto spun = std::chrono::steady_clock::now() - spin_start;
      if (spun > kSpin) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
        break;
      }
      if (spun > kHotSpin) std::this_thread::yield();
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    uint64_t e = entry_.load(std::memory_order_acquire);
    bool entered = false;
    while (entry_generation(e) == seen && (e & kClosed) == 0) {
      if (entry_.compare_exchange_weak(e, e + 1, std::memory_order_acq_rel)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;  // that job is over (or a newer one began: the loop sees it)
    if (id < active_) {
      (*fn_)(id, active_);
      finished_.fetch_add(1, std::memory_order_release);
    }
    entry_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run_leased(int n, const Job& fn, Workers mode) {
  const int cap = threads();
  if (n > cap) n = cap;
  if (n <= 1) {
    fn(0, 1);
    return;
  }
  if (openmp_ != nullptr) {
    if (openmp_->in_parallel()) {  // called from a parallel region: this thread alone
      fn(0, 1);
      return;
    }
    openmp_->parallel(n, [](void* job, int w, int workers) {
      (*static_cast<const Job*>(job))(w, workers);
    }, const_cast<Job*>(&fn));
    return;
  }
  run_on_pool(n, fn, mode);
}

void ThreadPool::run_on_pool(int n, const Job& fn, Workers mode) {
  if (int(threads_.size()) + 1 < n) start_workers(n);
  const uint64_t gen = generation_.load() + 1;
  fn_ = &fn;
  active_ = n;
  finished_.store(0, std::memory_order_relaxed);
  entry_.store(gen << 32, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.store(gen, std::memory_order_release);
  }
  const auto start = std::chrono::steady_clock::now();
  if (mode != Workers::kAwake || start - last_end_ < kRecentJob) cv_.notify_all();
  fn(0, n);
  if (mode == Workers::kAll) {
    while (finished_.load(std::memory_order_acquire) != n - 1) {
    }
  }
  // No worker enters after this; wait for those inside to leave, then fn may go.
  entry_.fetch_or(kClosed, std::memory_order_acq_rel);
  while ((entry_.load(std::memory_order_acquire) & kCountMask) != 0) {
  }
  last_end_ = std::chrono::steady_clock::now();
}

}  // namespace fastsample::cpu
