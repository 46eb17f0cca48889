#include "platform/thread_pool.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <mutex>
#endif

#include <chrono>
#include <climits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace troupe {
namespace {

// Blocking wait on a 32-bit word: returns once *word != expected (or spuriously).
#if defined(__linux__)
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
#else
// Portable wait (macOS): a mutex and condition variable per bucket of word
// addresses. The waiter compares the word under the bucket's lock and the
// waker takes that lock before notifying, and the word is always changed
// before the wake, so a wake-up is never lost. Process-wide state, but only
// synchronization (no data): context-aware addon instances share it safely.
struct WaitBucket {
  std::mutex mu;
  std::condition_variable cv;
};
WaitBucket& bucket_of(const void* word) {
  static WaitBucket buckets[64];
  return buckets[(reinterpret_cast<uintptr_t>(word) >> 6) % 64];
}

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  WaitBucket& b = bucket_of(word);
  std::unique_lock<std::mutex> lock(b.mu);
  if (word->load(std::memory_order_seq_cst) != expected) return;
  b.cv.wait(lock);
}

void futex_wake_all(std::atomic<uint32_t>* word) {
  WaitBucket& b = bucket_of(word);
  { std::lock_guard<std::mutex> lock(b.mu); }
  b.cv.notify_all();
}
#endif

thread_local size_t t_index = 0;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Spins until done() or kSpinMicros have passed; true when done() became true.
template <typename Done>
bool spin_until(Done done) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point until = Clock::now() + std::chrono::microseconds(ThreadPool::kSpinMicros);
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (Clock::now() >= until) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(size_t threads) {
  for (size_t i = 1; i < (threads == 0 ? 1 : threads); ++i)
    workers_.emplace_back([this, i] { worker_loop(i); });
}

size_t ThreadPool::current_index() { return t_index; }

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(&generation_);
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::drain() {
  for (;;) {
    const size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return;
    (*job_)(i);
  }
}

void ThreadPool::worker_loop(size_t index) {
  t_index = index;
  // Generation 0 is the pool's initial state (the constructor starts no job), so
  // a job published before this thread first runs is not missed.
  uint32_t seen = 0;
  for (;;) {
    // Wait for a new generation: spin briefly, then sleep on the futex word.
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      sleeping_workers_.fetch_add(1, std::memory_order_seq_cst);
      while (generation_.load(std::memory_order_seq_cst) == seen) {
        sleeps_.fetch_add(1, std::memory_order_relaxed);
        futex_wait(&generation_, seen);
      }
      sleeping_workers_.fetch_sub(1, std::memory_order_seq_cst);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    drain();
    if (busy_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_sleeping_.load(std::memory_order_seq_cst) != 0)
      futex_wake_all(&busy_);
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1 || workers_.empty()) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  jobs_.fetch_add(1, std::memory_order_relaxed);
  job_ = &fn;
  count_ = n;
  next_.store(0, std::memory_order_relaxed);
  busy_.store(static_cast<uint32_t>(workers_.size()), std::memory_order_relaxed);
  // Publishes job_, count_, next_ and busy_ (release), then wakes sleepers if any.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_workers_.load(std::memory_order_seq_cst) != 0) futex_wake_all(&generation_);
  drain();
  // Wait for every worker to leave the job (each claims no item past count_).
  if (!spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; })) {
    caller_sleeping_.store(1, std::memory_order_seq_cst);
    for (uint32_t b; (b = busy_.load(std::memory_order_seq_cst)) != 0;) {
      sleeps_.fetch_add(1, std::memory_order_relaxed);
      futex_wait(&busy_, b);
    }
    caller_sleeping_.store(0, std::memory_order_relaxed);
  }
  job_ = nullptr;
}

}  // namespace troupe
