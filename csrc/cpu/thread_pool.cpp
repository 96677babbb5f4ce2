#include "thread_pool.h"

#include <cstdlib>

namespace fastsample::cpu {

int default_thread_count() {
  if (const char* env = std::getenv("FASTSAMPLE_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : int(hw);
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool;
  return pool;
}

ThreadPool::ThreadPool() { resize(default_thread_count()); }

ThreadPool::~ThreadPool() { stop_all(); }

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

void ThreadPool::resize(int n) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  stop_all();
  // New workers start at the current generation: the last batch's function is gone.
  const uint64_t now = generation_.load();
  for (int i = 1; i < n; ++i) threads_.emplace_back([this, i, now] { worker_loop(i, now); });
}

void ThreadPool::worker_loop(int id, uint64_t seen) {
  for (;;) {
    // Spin first: a decode step arrives every few hundred microseconds and waking a sleeping
    // thread costs tens of them.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && !stop_.load()) {
      if (++spins > 20000) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load() != seen || stop_.load(); });
        break;
      }
    }
    if (stop_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    if (id < active_) {
      (*fn_)(id);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::run(int n, const std::function<void(int)>& fn) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  if (n > size()) n = size();
  if (n <= 1) {
    fn(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    active_ = n;
    pending_.store(n - 1);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(0);
  while (pending_.load(std::memory_order_acquire) != 0) {
  }
}

}  // namespace fastsample::cpu
