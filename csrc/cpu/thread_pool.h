// A small persistent pool: the caller runs worker 0 itself; the others spin for a while after
// each job (for 300 us, yielding their core after the first 50), then sleep.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fastsample::cpu {

class ThreadPool {
 public:
  // Whether every worker must take part in a job.
  enum class Workers {
    kAll,       // fn(w) runs for every w in [0, n): workers wait for each other (teams)
    kOptional,  // fn(0) runs on the caller; other workers help if they arrive in time (fn
                // hands out work dynamically), and the caller never waits for one that has
                // not started
    kAwake,     // kOptional, but sleeping workers are woken only when the previous job
                // ended moments ago (a caller in a tight loop keeps them spinning). For a job
                // shorter than a wake-up, after a pause such as a model's forward pass, waking
                // costs the caller more than the help is worth: the woken thread competes for
                // the cores with the caller and with torch's threads, which still spin.
  };
  // The pool held for one job: size() cannot change (resize waits) until the lease ends, so a
  // job planned from size() (a team per row, whose members wait for each other) gets every
  // worker it planned for.
  class Lease {
   public:
    explicit Lease(ThreadPool& pool) : pool_(pool), lock_(pool.run_mu_) {}
    int size() const { return pool_.size(); }
    // Runs fn for the workers as `mode` says and returns when every started call has
    // returned; n is capped at size().
    void run(int n, const std::function<void(int)>& fn, Workers mode) {
      pool_.run_leased(n, fn, mode);
    }

   private:
    ThreadPool& pool_;
    std::lock_guard<std::mutex> lock_;
  };
  static ThreadPool& instance();
  int size() const { return size_.load(std::memory_order_acquire); }
  // Waits for the job in progress, if any.
  void resize(int n);

 private:
  void run_leased(int n, const std::function<void(int)>& fn, Workers mode);
  ThreadPool();
  ~ThreadPool();
  void stop_all();
  void worker_loop(int id, uint64_t seen);

  std::vector<std::thread> threads_;
  std::atomic<int> size_{1};  // threads_.size() + 1 (the caller), readable during a resize
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  // The current job, published before `generation_` moves and stable while any worker is in it.
  const std::function<void(int)>* fn_ = nullptr;
  int active_ = 0;
  // Job entry: (generation << 32) | closed bit | number of workers inside the job. A worker
  // enters by a compare-exchange that names the generation it woke for, so it never enters an
  // older or newer job by mistake, and never after the caller closed the job.
  std::atomic<uint64_t> entry_{0};
  std::atomic<int> finished_{0};  // workers of a kAll job that have returned from fn
  std::mutex run_mu_;             // one job (Lease) or resize at a time
  std::chrono::steady_clock::time_point last_end_{};  // when the previous job returned
};

int default_thread_count();

}  // namespace fastsample::cpu
