// A fixed pool of compute threads for one model. The thread that calls
// parallel_for works too, so a pool of `threads` uses threads - 1 workers.
// Waits block on condition variables (futex): with 2 cores, a spinning waiter
// would steal time from the compute threads.
//
// parallel_for(n, fn) runs fn(i) for every i in [0, n) exactly once, items
// claimed dynamically; callers make fn's result independent of which thread
// runs which item (every kernel writes its own outputs), so results are
// bitwise the same for any thread count.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
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
  // Not reentrant: one parallel_for at a time (the model serializes its steps).
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

 private:
  void worker_loop();
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  size_t busy_ = 0;  // workers still inside the current job
  bool stop_ = false;
  const std::function<void(size_t)>* job_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};
};

}  // namespace troupe
