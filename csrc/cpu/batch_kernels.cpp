// The CPU batch kernels. This file is compiled once per instruction-set level with FS_CPU_ISA set
// to that level's namespace; the shared row algorithms are instantiated inside it.
#include <atomic>
#include <memory>

#include "cpu_backend.h"
#include "cpu_context.h"
#include "fastsample/batch_row.h"

#ifndef FS_CPU_ISA
#error "FS_CPU_ISA must name the instruction-set namespace"
#endif

namespace fastsample::cpu::FS_CPU_ISA {
namespace {

// Below this many logits per row a second thread on the same row costs more than it saves.
constexpr int64_t kTeamMinVocab = 32768;
// Batches smaller than this many logits in all run on the calling thread.
constexpr int64_t kParallelMinWork = 65536;
// Batches smaller than this many logits (about 0.3 ms on one core) do not wake sleeping workers.
constexpr int64_t kWakeMinWork = int64_t(1) << 20;

// Top-k at most this small (or greedy): a row's work is its first pass, plus a few groups.
constexpr int64_t kSmallTopK = 64;

// Whether every row's work is mostly the first pass over it (greedy, or a small top-k without
// stages 1-3 or logprobs). Splitting that pass between threads does not pay for the barriers
// and the duplicated short-list work that follow (measured at B = 1, V = 128256).
bool first_pass_dominates(const BatchArgs& a) {
  if (a.edits.enabled || a.logprobs.out_logprob != nullptr) return false;
  for (int64_t row = 0; row < a.batch; ++row) {
    const RowParams p = batch_row_params(a, row);
    const bool small_k = p.temperature > 0.0f && p.top_k > 0 && p.top_k <= kSmallTopK &&
                         !reads_whole_row(p);
    if (!(p.temperature == 0.0f || small_k)) return false;
  }
  return true;
}

template <RowTask kTask>
bool run_row_any_dtype(CpuCtx& ctx, const BatchArgs& a, int64_t row, const RowScratch& scratch) {
  switch (a.dtype) {
    case DType::kFloat16: return run_batch_row<kTask, DType::kFloat16>(ctx, a, row, scratch);
    case DType::kBFloat16: return run_batch_row<kTask, DType::kBFloat16>(ctx, a, row, scratch);
    default: return run_batch_row<kTask, DType::kFloat32>(ctx, a, row, scratch);
  }
}

// Where row `row`'s logits start and how many bytes they span.
void row_bytes(const BatchArgs& a, int64_t row, const void** start, int64_t* bytes) {
  const int64_t elem = a.dtype == DType::kFloat32 ? 4 : 2;
  *start = static_cast<const char*>(a.logits) + row * a.row_stride * elem;
  *bytes = a.vocab * elem;
}

WorkerBuffers& worker_buffers() {
  static thread_local WorkerBuffers buffers;
  return buffers;
}

// Rows handed out dynamically to `workers` workers, one row per worker at a time.
template <RowTask kTask>
void run_rows(const BatchArgs& a, int workers, std::atomic<int64_t>* next,
              std::atomic<int64_t>* invalid) {
  WorkerBuffers& buf = worker_buffers();
  const RowScratch scratch = buf.row_scratch(a);
  CpuCtx ctx(0, 1, nullptr, &buf);
  int64_t local_invalid = 0;
  for (int64_t row = (*next)++; row < a.batch; row = (*next)++) {
    // Rows go out in turn, so this worker's next row is most likely `workers - 1` past the
    // next one handed out. A wrong guess only warms a row another worker reads.
    const int64_t ahead = next->load(std::memory_order_relaxed) + workers - 1;
    if (ahead < a.batch) {
      const void* start;
      int64_t bytes;
      row_bytes(a, ahead, &start, &bytes);
      ctx.set_read_ahead(start, bytes);
    }
    if (!run_row_any_dtype<kTask>(ctx, a, row, scratch)) ++local_invalid;
  }
  *invalid += local_invalid;
}

template <RowTask kTask>
int64_t run_batch(const BatchArgs& a) {
  // Held until the batch is done: the team plan below stays valid while set_num_threads waits.
  ThreadPool::Lease pool(ThreadPool::instance());
  int threads = a.num_threads > 0 ? a.num_threads : pool.threads();
  if (a.batch * a.vocab < kParallelMinWork) threads = 1;
  std::atomic<int64_t> invalid{0};
  std::atomic<int64_t> next{0};

  // Few long rows: a team of threads per row. Otherwise: one thread per row, rows handed out
  // dynamically. Either way a row's result does not depend on the choice.
  int team = 1;
  if (a.batch < threads && a.vocab >= kTeamMinVocab && !first_pass_dominates(a)) {
    team = min_of<int>(kMaxTeam, threads / int(a.batch < 1 ? 1 : a.batch));
  }
  if (team > 1) {
    const int planned = int(a.batch) * team;
    std::unique_ptr<TeamShared[]> shared(new TeamShared[a.batch]);
    for (int64_t r = 0; r < a.batch; ++r) shared[r].barrier.reset(team);
    pool.run(planned, [&](int w, int workers) {
      if (workers != planned) {  // fewer threads than planned (OpenMP): no teams, same rows
        run_rows<kTask>(a, workers, &next, &invalid);
        return;
      }
      const int64_t row = w / team;
      const int rank = w % team;
      TeamShared& sh = shared[row];
      WorkerBuffers& buf = worker_buffers();
      CpuCtx ctx(rank, team, &sh, &buf);
      if (rank == 0) sh.scratch = buf.row_scratch(a);
      ctx.sync();
      if (!run_row_any_dtype<kTask>(ctx, a, row, sh.scratch) && rank == 0) invalid++;
    }, ThreadPool::Workers::kAll);
    return invalid.load();
  }
  const int workers = int(min_of<int64_t>(threads, a.batch < 1 ? 1 : a.batch));
  pool.run(workers, [&](int, int actual) { run_rows<kTask>(a, actual, &next, &invalid); },
           a.batch * a.vocab < kWakeMinWork ? ThreadPool::Workers::kAwake
                                            : ThreadPool::Workers::kOptional);
  return invalid.load();
}

}  // namespace

int64_t sample_batch(const BatchArgs& args) {
  return sample_task(args) == RowTask::kVerify ? run_batch<RowTask::kVerify>(args)
                                               : run_batch<RowTask::kSample>(args);
}
int64_t process_batch(const BatchArgs& args) { return run_batch<RowTask::kProcess>(args); }

}  // namespace fastsample::cpu::FS_CPU_ISA
