// A fixed pool of compute threads for one model. The thread that calls
// parallel_for works too, so a pool of `threads` uses threads - 1 workers.
//
// Waiting: a thread with nothing to do spins for at most kSpinMicros (checking
// one atomic word, with a pause instruction between checks), then blocks in
// futex(FUTEX_WAIT) on that word. The short spin catches the next job of a
// decode step (the gaps between a layer's operations are microseconds) without
// a sleep / wake-up round trip; the bound keeps an idle pool from competing
// with anything else for the cores (DESIGN.md: with 2 cores a spinning waiter
// steals the compute threads' time). Wake-ups are issued only when a thread
// is actually asleep.
//
// parallel_for(n, fn) runs fn(i) for every i in [0, n) exactly once, items
// claimed dynamically from one atomic counter; callers make fn's result
// independent of which thread runs which item (every kernel writes its own
// outputs), so results are bitwise the same for any thread count.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace troupe {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const { return workers_.size() + 1; }
  // Index of the calling thread in the pool that runs it: 1 .. threads - 1 for
  // workers, 0 for any other thread (the caller of parallel_for).
  static size_t current_index();
  // Not reentrant: one parallel_for at a time (the model serializes its steps).
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

  // Longest busy wait before blocking, in microseconds.
  static constexpr int64_t kSpinMicros = 50;

  // Counters (for tests and benchmarks): jobs run, and how often a thread
  // went to sleep in futex_wait (worker waiting for work, or caller for workers).
  uint64_t jobs() const { return jobs_.load(std::memory_order_relaxed); }
  uint64_t sleeps() const { return sleeps_.load(std::memory_order_relaxed); }

 private:
  void worker_loop(size_t index);
  void drain();

  std::vector<std::thread> workers_;
  // Futex words: the job generation (workers wait for it to change) and the
  // number of workers still inside the current job (the caller waits for 0).
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint32_t> busy_{0};
  std::atomic<uint32_t> sleeping_workers_{0};
  std::atomic<uint32_t> caller_sleeping_{0};
  std::atomic<bool> stop_{false};
  const std::function<void(size_t)>* job_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<uint64_t> jobs_{0};
  std::atomic<uint64_t> sleeps_{0};
};

}  // namespace troupe
