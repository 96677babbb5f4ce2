// Where the CPU kernels' parallel regions run: on the OpenMP thread team torch has loaded
// (openmp_runtime.h), or, without one, on a small persistent pool of fastsample's own. The
// caller is worker 0 either way. The pool's workers spin for a while after each job (300 us,
// yielding their core after the first 50), then sleep.
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

class OpenMpRuntime;

class ThreadPool {
 public:
  // fn(worker, workers): `workers` is how many run the job. On the pool it is what the job
  // asked for; on an OpenMP team it is the team's actual size, which can be smaller (a call
  // from inside a parallel region gets one thread).
  using Job = std::function<void(int, int)>;

  // Whether every worker must take part in a job.
  enum class Workers {
    kAll,       // fn(w) runs for every w in [0, n): workers wait for each other (teams)
    kOptional,  // fn(0) runs on the caller; other workers help if they arrive in time (fn
                // hands out work dynamically), and the caller never waits for one that has
                // not started (on an OpenMP team every thread runs fn)
    kAwake,     // kOptional, but sleeping workers are woken only when the previous job
                // ended moments ago (a caller in a tight loop keeps them spinning). For a job
                // shorter than a wake-up, after a pause such as a model's forward pass, waking
                // costs the caller more than the help is worth: the woken thread competes for
                // the cores with the caller and with torch's threads, which still spin. On an
                // OpenMP team (torch's threads themselves) it is kOptional.
  };

  // The workers held for one job: the thread count and the backend cannot change (set_threads
  // waits) until the lease ends, so a job planned from threads() (a team per row, whose
  // members wait for each other) gets every worker it planned for.
  class Lease {
   public:
    explicit Lease(ThreadPool& pool) : pool_(pool), lock_(pool.run_mu_) {}
    // Workers a job may use: set_threads' count, else FASTSAMPLE_NUM_THREADS, else the OpenMP
    // runtime's default for this thread (torch.get_num_threads()), else the cores.
    int threads() const { return pool_.threads(); }
    // Runs fn as `mode` says on min(n, threads()) workers and returns when every started
    // call has returned.
    void run(int n, const Job& fn, Workers mode) { pool_.run_leased(n, fn, mode); }

   private:
    ThreadPool& pool_;
    std::lock_guard<std::mutex> lock_;
  };

  static ThreadPool& instance();
  // fastsample.set_num_threads: n >= 1, or 0 to follow torch again. Waits for a running job.
  void set_threads(int n);
  int threads() const;
  // "openmp <library>" when jobs run on the OpenMP runtime torch loaded, else "pool".
  const char* backend() const;

 private:
  ThreadPool();
  ~ThreadPool();
  void run_leased(int n, const Job& fn, Workers mode);
  void run_on_pool(int n, const Job& fn, Workers mode);
  void start_workers(int n);
  void stop_all();
  void worker_loop(int id, uint64_t seen);

  const OpenMpRuntime* openmp_;   // null: the pool
  std::atomic<int> requested_{0};  // set_threads / FASTSAMPLE_NUM_THREADS; 0: the default
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  // The current job, published before `generation_` moves and stable while any worker is in it.
  const Job* fn_ = nullptr;
  int active_ = 0;
  // Job entry: (generation << 32) | closed bit | number of workers inside the job. A worker
  // enters by a compare-exchange that names the generation it woke for, so it never enters an
  // older or newer job by mistake, and never after the caller closed the job.
  std::atomic<uint64_t> entry_{0};
  std::atomic<int> finished_{0};  // workers of a kAll job that have returned from fn
  std::mutex run_mu_;             // one job (Lease) or set_threads at a time
  std::chrono::steady_clock::time_point last_end_{};  // when the previous job returned
};

// The cores of this machine (at least 1).
int hardware_threads();

}  // namespace fastsample::cpu
