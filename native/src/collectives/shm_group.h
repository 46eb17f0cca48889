// Shared-memory collectives for the ranks of one tensor group on one machine:
// an all-reduce (sum of fp32 vectors, in rank order) and a one-writer /
// many-reader broadcast (step plans). One implementation serves worker threads
// and child processes alike: every rank maps the same memfd.
//
// Creation and attachment
//   The creator (usually the rank group's supervisor) calls ShmGroup::Create:
//   memfd_create + ftruncate + fallocate + seals (no shrink/grow) + mmap
//   MAP_SHARED. A memfd has no name in any file system, so nothing is left in
//   /dev/shm whatever happens; the memory is freed when the last fd and the
//   last mapping are gone (a SIGKILLed creator included). The creator keeps
//   the fd open for the group's life; ranks (threads of the creator or other
//   processes of the same user) attach by opening /proc/<pid>/fd/<fd>, check
//   the header against the descriptor, map the region and close their fd.
//
// Layout (offsets in bytes; every offset follows from nranks, capacity and
// broadcast capacity, so the descriptor fixes them):
//
//   0       +--------------------------------------------------------------+
//           | header line: magic 'TRPC', version, nranks, control bytes,   |
//           |   capacity C, broadcast capacity B, total bytes, id (random  |
//           |   64-bit, also in the descriptor), creator pid, ready flag   |
//   128     +--------------------------------------------------------------+
//           | epoch line: epoch (u32; 0 while healthy, bumped on abort)    |
//   256     +--------------------------------------------------------------+
//           | broadcast line: gen (futex word), gen waiters,               |
//           |   root[2], len[2]                   index = generation & 1  |
//   384     +--------------------------------------------------------------+
//           | rank 0 line: arrive (futex word), arrive waiters,            |
//           |   ack (futex word), ack waiters, len[2], claim, pid          |
//           | rank 1 line ... rank n-1 line        (128 B each, so no two  |
//           |   ranks' words share a cache line or an adjacent-line pair)  |
//   K       +--------------------------------------------------------------+  K = control bytes
//           | all-reduce slot [rank 0][parity 0]            S bytes        |    (page multiple)
//           | all-reduce slot [rank 0][parity 1]                           |  S = C rounded up
//           | ...                                                          |      to 4096
//           | all-reduce slot [rank n-1][parity 1]                         |
//   K+2nS   +--------------------------------------------------------------+
//           | broadcast slot [parity 0]                     T bytes        |  T = B rounded up
//           | broadcast slot [parity 1]                                    |      to 4096
//   total   +--------------------------------------------------------------+
//
// All-reduce, generation g (each rank counts its own calls; all ranks make
// the same sequence of calls), parity p = g & 1:
//   1. copy my vector into slot[me][p], len[p] = n, arrive[me] = g (release);
//   2. wait until arrive[q] >= g for every peer q;
//   3. out = ((slot[0][p] + slot[1][p]) + slot[2][p]) + ... in rank order, on
//      EVERY rank: the result does not depend on arrival order and is
//      bit-identical on all ranks and to the sequential rank-order sum.
//   Double buffering needs no acks: a rank starts generation g only after
//   every peer arrived at g-1, and a peer arrives at g-1 only after it has
//   finished reading generation g-2, the last user of slot[me][p]. A fast
//   rank can thus run one generation ahead (into the other parity) but never
//   overwrite a slot a slow peer still reads.
//
// Broadcast, generation g (its own counter), parity p = g & 1, root R (all
// ranks pass the same root for a generation; it may change between calls):
//   root:    wait until ack[q] >= g-2 for every rank q (nobody still reads
//            slot p from generation g-2), copy into bslot[p], root[p] = R,
//            len[p] = n, gen = g (release), then ack[me] = g;
//   readers: wait until gen >= g, copy bslot[p] out, ack[me] = g.
//
// Waits: spin for a few microseconds (pause), then futex-wait on the 32-bit
// word (shared futex, not FUTEX_PRIVATE: it crosses processes), each sleep
// capped at 20 ms so the epoch is rechecked even if a wake is missed. A
// writer makes the futex_wake syscall only when the word's waiter count says
// somebody sleeps (seq_cst on both sides, so no wake is lost). Every call is
// bounded by its timeout AND by the epoch: BumpEpoch() (any handle, e.g. the
// supervisor after a peer died) increments the epoch and wakes every word;
// waiters then fail with "collective aborted: epoch changed (a peer died?)".
//
// After an abort (epoch != 0) or a timeout the group is unusable: generations
// of the ranks no longer agree. Re-create it (new memfd, new descriptor).
// A rank's `claim` word makes a second attach of the same rank fail; closing
// the handle frees it, a dead process never does (its group is dead anyway).
// A blocking call cannot be interrupted from JS (Worker.terminate() waits for
// it): bump the epoch to release it, or let its timeout run out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "collectives/tensor_collective.h"

namespace troupe {
namespace coll {

constexpr uint32_t kMagic = 0x43505254;  // 'TRPC' little endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxRanks = 64;
constexpr uint64_t kMaxCapacity = uint64_t(1) << 36;  // 64 GiB per slot: a sanity bound

enum class ErrorCode {
  kType,       // wrong argument type                    -> TypeError
  kRange,      // argument out of range                  -> RangeError
  kAttach,     // cannot open / map / validate a group   -> Error
  kTimeout,    // a wait ran past its timeout            -> Error
  kAborted,    // the epoch changed                      -> Error
  kMismatch,   // ranks disagree (length, root)          -> Error
  kBroken,     // handle unusable after timeout/abort    -> Error
  kClosed,     // handle closed                          -> Error
  kBusy,       // another call runs on this handle       -> Error
  kState,      // e.g. owner handle asked to all-reduce  -> Error
  kSystem,     // a syscall failed                       -> Error
};

// 'TROUPE_COLLECTIVE_TIMEOUT', ... (the JS error's `code`).
const char* error_code_name(ErrorCode code);

class CollectiveError : public std::runtime_error {
 public:
  CollectiveError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// What a rank needs to attach; plain values, serializable by the caller.
struct Descriptor {
  int64_t pid = 0;
  int64_t fd = -1;
  uint64_t bytes = 0;
  uint32_t ranks = 0;
  uint64_t capacity = 0;        // all-reduce slot bytes
  uint64_t bcast_capacity = 0;  // broadcast slot bytes
  uint64_t id = 0;
  uint32_t version = kVersion;
};

struct Stats {
  uint64_t all_reduces = 0;
  uint64_t broadcasts_sent = 0;
  uint64_t broadcasts_received = 0;
  uint64_t bytes_reduced = 0;
  uint64_t spin_waits = 0;   // waits satisfied without sleeping
  uint64_t futex_waits = 0;  // FUTEX_WAIT calls made
};

struct Region;  // the mapping (and, for the owner, the memfd)

class ShmGroup final : public TensorCollective {
 public:
  // The owner: creates the memfd; rank() == -1 (it can bump the epoch and
  // describe the group, not take part in collectives).
  static std::unique_ptr<ShmGroup> Create(uint32_t ranks, uint64_t capacity,
                                          uint64_t bcast_capacity);
  // A rank in [0, ranks): opens /proc/<pid>/fd/<fd>, validates, maps.
  // spin_ns: how long a wait spins before it sleeps.
  static std::unique_ptr<ShmGroup> Attach(const Descriptor& d, int32_t rank, uint64_t spin_ns);

  ~ShmGroup();
  ShmGroup(const ShmGroup&) = delete;
  ShmGroup& operator=(const ShmGroup&) = delete;

  const Descriptor& descriptor() const { return desc_; }
  int32_t rank() const override { return rank_; }
  uint32_t ranks() const override { return desc_.ranks; }
  uint64_t capacity() const override { return desc_.capacity; }

  // In place: data[0..n) becomes the rank-order sum over all ranks.
  // segments > 1: see shm_group.cc (a fold of every rank's parts in order; result in data[0, n / segments)).
  void AllReduce(float* data, size_t n, double timeout_ms, size_t segments = 1) override;
  void Abort() override { BumpEpoch(); }

  // Root: sends src[0..n) (dst_or_src = src, n = its length); returns n.
  // Reader: waits for the root's message of this generation; copies it into
  // `dst` (capacity `n`) if given, else into alloc(len); returns its length.
  // A reader whose dst is too small gets kRange and the message stays pending
  // (the next call receives it).
  size_t Broadcast(uint32_t root, uint8_t* dst_or_src, size_t n,
                   const std::function<uint8_t*(size_t)>& alloc, double timeout_ms);

  // Increments the epoch and wakes every waiter; returns the new epoch.
  uint32_t BumpEpoch();
  uint32_t Epoch() const;

  Stats stats() const;

  // Busy flag: one call at a time per handle (sync or async).
  bool TryAcquire() { return !busy_.exchange(true, std::memory_order_acquire); }
  void Release() { busy_.store(false, std::memory_order_release); }

 private:
  ShmGroup() = default;
  void CheckUsable(const char* what) const;

  std::shared_ptr<Region> region_;
  Descriptor desc_;
  int32_t rank_ = -1;
  uint64_t spin_ns_ = 0;
  uint32_t ar_gen_ = 0;  // all-reduce generations this handle completed
  uint32_t bc_gen_ = 0;  // broadcast generations this handle completed
  std::string broken_;   // non-empty: why this handle is unusable
  std::atomic<bool> busy_{false};
  // Counters (relaxed atomics: stats() may read while an async call runs).
  std::atomic<uint64_t> n_all_reduces_{0}, n_bc_sent_{0}, n_bc_received_{0}, n_bytes_reduced_{0};
  std::atomic<uint64_t> n_spin_waits_{0}, n_futex_waits_{0};
  friend class Waiter;
};

}  // namespace coll
}  // namespace troupe
