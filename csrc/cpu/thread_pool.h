// A small persistent pool: the caller runs worker 0 itself, the rest spin briefly, then sleep.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fastsample::cpu {

class ThreadPool {
 public:
  static ThreadPool& instance();
  // Runs fn(worker) for worker in [0, n) and returns when all are done; n is capped at size().
  void run(int n, const std::function<void(int)>& fn);
  int size() const { return int(threads_.size()) + 1; }
  void resize(int n);

 private:
  ThreadPool();
  ~ThreadPool();
  void stop_all();
  void worker_loop(int id, uint64_t seen);

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(int)>* fn_ = nullptr;
  int active_ = 0;
  std::mutex run_mu_;  // one batch at a time
};

int default_thread_count();

}  // namespace fastsample::cpu
