// Shared-memory collectives: region creation / attachment, waits, all-reduce
// and broadcast. The layout and the protocols are drawn in shm_group.h.
#include "collectives/shm_group.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(__linux__)
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define TROUPE_HAVE_SHM_COLLECTIVES 1
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // _mm_pause (SSE2, baseline on x86-64)
#endif

namespace troupe {
namespace coll {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kType: return "TROUPE_COLLECTIVE_TYPE";
    case ErrorCode::kRange: return "TROUPE_COLLECTIVE_RANGE";
    case ErrorCode::kAttach: return "TROUPE_COLLECTIVE_ATTACH";
    case ErrorCode::kTimeout: return "TROUPE_COLLECTIVE_TIMEOUT";
    case ErrorCode::kAborted: return "TROUPE_COLLECTIVE_ABORTED";
    case ErrorCode::kMismatch: return "TROUPE_COLLECTIVE_MISMATCH";
    case ErrorCode::kBroken: return "TROUPE_COLLECTIVE_BROKEN";
    case ErrorCode::kClosed: return "TROUPE_COLLECTIVE_CLOSED";
    case ErrorCode::kBusy: return "TROUPE_COLLECTIVE_BUSY";
    case ErrorCode::kState: return "TROUPE_COLLECTIVE_STATE";
    case ErrorCode::kSystem: return "TROUPE_COLLECTIVE_SYSTEM";
  }
  return "TROUPE_COLLECTIVE_ERROR";
}

namespace {

constexpr int kIntMax = std::numeric_limits<int>::max();
constexpr size_t kLine = 128;
constexpr size_t kPage = 4096;
constexpr int64_t kMaxSleepNs = 20 * 1000 * 1000;  // each futex sleep; the epoch is rechecked after it

// ---- the shared structures (see the layout in shm_group.h) -----------------

struct HeaderLine {
  uint32_t magic;
  uint32_t version;
  uint32_t nranks;
  uint32_t control_bytes;
  uint64_t capacity;
  uint64_t bcast_capacity;
  uint64_t total_bytes;
  uint64_t id;
  uint32_t creator_pid;
  uint32_t ready;  // 1 once the creator has written everything above (release)
};
struct EpochLine {
  uint32_t epoch;
};
struct BcastLine {
  uint32_t gen;  // futex word: last generation the root published
  uint32_t gen_waiters;
  uint32_t root[2];
  uint64_t len[2];
};
struct RankLine {
  uint32_t arrive;  // futex word: last all-reduce generation this rank published
  uint32_t arrive_waiters;
  uint32_t ack;  // futex word: last broadcast generation this rank finished
  uint32_t ack_waiters;
  uint64_t len[2];  // all-reduce element count per parity
  uint32_t claim;   // 1 while a handle is attached as this rank
  uint32_t pid;
};
static_assert(sizeof(HeaderLine) <= kLine, "header line");
static_assert(sizeof(BcastLine) <= kLine, "broadcast line");
static_assert(sizeof(RankLine) <= kLine, "rank line");

constexpr size_t kEpochOff = kLine;
constexpr size_t kBcastOff = 2 * kLine;
constexpr size_t kRanksOff = 3 * kLine;

struct Layout {
  size_t control_bytes = 0;
  size_t slot_stride = 0;   // all-reduce slot
  size_t bslot_stride = 0;  // broadcast slot
  size_t allreduce_off = 0;
  size_t bcast_off = 0;
  size_t total = 0;
};

bool round_up(uint64_t v, uint64_t to, uint64_t* out) {
  if (v > UINT64_MAX - (to - 1)) return false;
  *out = (v + to - 1) / to * to;
  return true;
}

// False on overflow (the caller reports it).
bool compute_layout(uint32_t ranks, uint64_t capacity, uint64_t bcast_capacity, Layout* L) {
  uint64_t control = 0, slot = 0, bslot = 0, ar = 0, bc = 0, total = 0;
  if (!round_up(kRanksOff + uint64_t(ranks) * kLine, kPage, &control)) return false;
  if (!round_up(capacity, kPage, &slot) || !round_up(bcast_capacity, kPage, &bslot)) return false;
  if (__builtin_mul_overflow(slot, uint64_t(2) * ranks, &ar)) return false;
  if (__builtin_mul_overflow(bslot, uint64_t(2), &bc)) return false;
  if (__builtin_add_overflow(control, ar, &total) || __builtin_add_overflow(total, bc, &total))
    return false;
  if (total > uint64_t(SIZE_MAX)) return false;
  L->control_bytes = control;
  L->slot_stride = slot;
  L->bslot_stride = bslot;
  L->allreduce_off = control;
  L->bcast_off = control + ar;
  L->total = total;
  return true;
}

// ---- atomics, time, futex ---------------------------------------------------

inline uint32_t load_acquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline uint32_t load_relaxed(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
// v has reached target (generations are u32 counters that may wrap).
inline bool reached(uint32_t v, uint32_t target) { return int32_t(v - target) >= 0; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

#if TROUPE_HAVE_SHM_COLLECTIVES
int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Shared (not FUTEX_PRIVATE): waiters may sit in other processes.
void futex_wait(uint32_t* word, uint32_t expected, int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0);
}
void futex_wake_all(uint32_t* word) { syscall(SYS_futex, word, FUTEX_WAKE, kIntMax, nullptr, nullptr, 0); }

// Publishes a generation; wakes sleepers only if the waiter count says there
// are any (seq_cst store then load, mirrored by the waiter: no lost wake).
void publish(uint32_t* word, uint32_t* waiters, uint32_t value) {
  __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(waiters, __ATOMIC_SEQ_CST) != 0) futex_wake_all(word);
}
#endif

std::string errno_text(int err) { return std::string(std::strerror(err)); }

std::string fmt_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", ms);
  return buf;
}

std::string join_ranks(const std::vector<uint32_t>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

// ---- the region ---------------------------------------------------------------

struct Region {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  int fd = -1;  // the owner's memfd, kept open for the group's life; -1 for ranks
  Layout layout;

  ~Region() {
#if TROUPE_HAVE_SHM_COLLECTIVES
    if (base != nullptr) munmap(base, bytes);
    if (fd >= 0) close(fd);
#endif
  }
  HeaderLine* header() const { return reinterpret_cast<HeaderLine*>(base); }
  uint32_t* epoch() const { return &reinterpret_cast<EpochLine*>(base + kEpochOff)->epoch; }
  BcastLine* bcast() const { return reinterpret_cast<BcastLine*>(base + kBcastOff); }
  RankLine* rank(uint32_t r) const { return reinterpret_cast<RankLine*>(base + kRanksOff + r * kLine); }
  float* slot(uint32_t r, uint32_t parity) const {
    return reinterpret_cast<float*>(base + layout.allreduce_off + (2 * size_t(r) + parity) * layout.slot_stride);
  }
  uint8_t* bslot(uint32_t parity) const { return base + layout.bcast_off + parity * layout.bslot_stride; }
};

// ---- waits -------------------------------------------------------------------

enum class WaitResult { kOk, kTimeout, kAborted };

// Waits until *word has reached `target`: spin for spin_ns, then futex sleeps
// of at most kMaxSleepNs each, until deadline_ns; gives up when the epoch moves.
class Waiter {
 public:
  Waiter(ShmGroup& g, const Region& r, int64_t deadline_ns)
      : g_(g), r_(r), deadline_(deadline_ns) {}

  WaitResult wait(uint32_t* word, uint32_t* waiters, uint32_t target) {
#if TROUPE_HAVE_SHM_COLLECTIVES
    if (reached(load_acquire(word), target)) {
      g_.n_spin_waits_.fetch_add(1, std::memory_order_relaxed);
      return WaitResult::kOk;
    }
    const int64_t spin_until = now_ns() + int64_t(g_.spin_ns_);
    for (;;) {
      for (int k = 0; k < 32; ++k) {
        cpu_relax();
        if (reached(load_acquire(word), target)) {
          g_.n_spin_waits_.fetch_add(1, std::memory_order_relaxed);
          return WaitResult::kOk;
        }
      }
      if (load_relaxed(r_.epoch()) != 0) return WaitResult::kAborted;
      if (now_ns() >= spin_until) break;
    }
    for (;;) {
      if (load_relaxed(r_.epoch()) != 0) return WaitResult::kAborted;
      const int64_t t = now_ns();
      if (t >= deadline_) return WaitResult::kTimeout;
      __atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
      const uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
      if (!reached(v, target) && __atomic_load_n(r_.epoch(), __ATOMIC_SEQ_CST) == 0) {
        const int64_t left = deadline_ - t;
        futex_wait(word, v, left < kMaxSleepNs ? left : kMaxSleepNs);
        g_.n_futex_waits_.fetch_add(1, std::memory_order_relaxed);
      }
      __atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
      if (reached(load_acquire(word), target)) return WaitResult::kOk;
    }
#else
    (void)word;
    (void)waiters;
    (void)target;
    return WaitResult::kAborted;
#endif
  }

 private:
  ShmGroup& g_;
  const Region& r_;
  int64_t deadline_;
};

namespace {

#if TROUPE_HAVE_SHM_COLLECTIVES
int64_t deadline_after(double timeout_ms) {
  const double ns = timeout_ms * 1e6;
  const double cap = 9.0e18;  // far beyond any sane timeout; avoids overflow
  return now_ns() + int64_t(ns < cap ? ns : cap);
}
#endif

#if !TROUPE_HAVE_SHM_COLLECTIVES
[[noreturn]] void unsupported() {
  throw CollectiveError(ErrorCode::kSystem,
                        "shared-memory collectives need Linux (memfd_create, futex); this build has none");
}
#endif

}  // namespace

// ---- create / attach -----------------------------------------------------------

std::unique_ptr<ShmGroup> ShmGroup::Create(uint32_t ranks, uint64_t capacity, uint64_t bcast_capacity) {
#if !TROUPE_HAVE_SHM_COLLECTIVES
  (void)ranks;
  (void)capacity;
  (void)bcast_capacity;
  unsupported();
#else
  if (ranks < 1 || ranks > kMaxRanks)
    throw CollectiveError(ErrorCode::kRange, "createGroup: ranks must be in 1.." + std::to_string(kMaxRanks) +
                                                 ", got " + std::to_string(ranks));
  if (capacity < 1 || capacity > kMaxCapacity || capacity % 4 != 0)
    throw CollectiveError(ErrorCode::kRange,
                          "createGroup: capacityBytes must be a multiple of 4 (fp32) in 4.." +
                              std::to_string(kMaxCapacity) + ", got " + std::to_string(capacity));
  if (bcast_capacity < 1 || bcast_capacity > kMaxCapacity)
    throw CollectiveError(ErrorCode::kRange, "createGroup: broadcastCapacityBytes must be in 1.." +
                                                 std::to_string(kMaxCapacity) + ", got " +
                                                 std::to_string(bcast_capacity));
  Layout L;
  if (!compute_layout(ranks, capacity, bcast_capacity, &L))
    throw CollectiveError(ErrorCode::kRange, "createGroup: the region size overflows");

  auto region = std::make_shared<Region>();
  region->layout = L;
  region->fd = memfd_create("troupe-collectives", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (region->fd < 0)
    throw CollectiveError(ErrorCode::kSystem, "createGroup: memfd_create failed: " + errno_text(errno));
  if (ftruncate(region->fd, off_t(L.total)) != 0)
    throw CollectiveError(ErrorCode::kSystem, "createGroup: ftruncate(" + std::to_string(L.total) +
                                                  " bytes) failed: " + errno_text(errno));
  // Commit the memory now: a shortage is an error here, not a SIGBUS later.
  if (fallocate(region->fd, 0, 0, off_t(L.total)) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
    throw CollectiveError(ErrorCode::kSystem, "createGroup: cannot commit " + std::to_string(L.total) +
                                                  " bytes of shared memory: " + errno_text(errno) +
                                                  " (lower capacityBytes or ranks)");
  // Nobody may shrink it under a mapping (that would SIGBUS the ranks) or grow
  // it. Best effort: a kernel without sealing still gives a working group.
  (void)fcntl(region->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  void* p = mmap(nullptr, L.total, PROT_READ | PROT_WRITE, MAP_SHARED, region->fd, 0);
  if (p == MAP_FAILED)
    throw CollectiveError(ErrorCode::kSystem, "createGroup: mmap of " + std::to_string(L.total) +
                                                  " bytes failed: " + errno_text(errno));
  region->base = static_cast<uint8_t*>(p);
  region->bytes = L.total;

  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t(rd()) << 32) ^ uint64_t(rd());

  HeaderLine* h = region->header();  // the memory is zero-filled
  h->magic = kMagic;
  h->version = kVersion;
  h->nranks = ranks;
  h->control_bytes = uint32_t(L.control_bytes);
  h->capacity = capacity;
  h->bcast_capacity = bcast_capacity;
  h->total_bytes = L.total;
  h->id = id;
  h->creator_pid = uint32_t(getpid());
  __atomic_store_n(&h->ready, 1u, __ATOMIC_RELEASE);

  std::unique_ptr<ShmGroup> g(new ShmGroup());
  g->region_ = region;
  g->rank_ = -1;
  g->desc_.pid = getpid();
  g->desc_.fd = region->fd;
  g->desc_.bytes = L.total;
  g->desc_.ranks = ranks;
  g->desc_.capacity = capacity;
  g->desc_.bcast_capacity = bcast_capacity;
  g->desc_.id = id;
  g->desc_.version = kVersion;
  return g;
#endif
}

std::unique_ptr<ShmGroup> ShmGroup::Attach(const Descriptor& d, int32_t rank, uint64_t spin_ns) {
#if !TROUPE_HAVE_SHM_COLLECTIVES
  (void)d;
  (void)rank;
  (void)spin_ns;
  unsupported();
#else
  const std::string fn = "attachGroup: ";
  if (d.version != kVersion)
    throw CollectiveError(ErrorCode::kAttach, fn + "descriptor version " + std::to_string(d.version) +
                                                  " is not the version this addon speaks (" +
                                                  std::to_string(kVersion) +
                                                  "): creator and ranks must run the same build");
  if (d.ranks < 1 || d.ranks > kMaxRanks)
    throw CollectiveError(ErrorCode::kAttach, fn + "descriptor has ranks " + std::to_string(d.ranks) +
                                                  ", expected 1.." + std::to_string(kMaxRanks));
  if (rank < 0 || uint32_t(rank) >= d.ranks)
    throw CollectiveError(ErrorCode::kRange, fn + "rank " + std::to_string(rank) +
                                                 " is out of range for a group of " +
                                                 std::to_string(d.ranks) + " ranks");
  Layout L;
  if (!compute_layout(d.ranks, d.capacity, d.bcast_capacity, &L) || L.total != d.bytes)
    throw CollectiveError(ErrorCode::kAttach,
                          fn + "descriptor is inconsistent: bytes " + std::to_string(d.bytes) +
                              " do not match ranks " + std::to_string(d.ranks) + ", capacityBytes " +
                              std::to_string(d.capacity) + " and broadcastCapacityBytes " +
                              std::to_string(d.bcast_capacity) + " (pass the descriptor unchanged)");
  if (d.pid <= 0 || d.pid > kIntMax || d.fd < 0 || d.fd > kIntMax)
    throw CollectiveError(ErrorCode::kAttach, fn + "descriptor has an invalid pid " + std::to_string(d.pid) +
                                                  " or fd " + std::to_string(d.fd));

  const std::string path = "/proc/" + std::to_string(d.pid) + "/fd/" + std::to_string(d.fd);
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    const std::string proc = "/proc/" + std::to_string(d.pid);
    struct stat st;
    if (err == ENOENT && stat(proc.c_str(), &st) != 0)
      throw CollectiveError(ErrorCode::kAttach,
                            fn + "no process " + std::to_string(d.pid) +
                                " (the group's creator) is running: it exited or crashed; re-create the group");
    if (err == ENOENT)
      throw CollectiveError(ErrorCode::kAttach,
                            fn + "process " + std::to_string(d.pid) + " has no fd " + std::to_string(d.fd) +
                                ": the creator closed the group (keep its handle open while ranks attach)");
    if (err == EACCES || err == EPERM)
      throw CollectiveError(ErrorCode::kAttach, fn + "permission denied opening " + path +
                                                    ": ranks must run as the creator's user and the creator "
                                                    "must be dumpable (" + errno_text(err) + ")");
    throw CollectiveError(ErrorCode::kAttach, fn + "cannot open " + path + ": " + errno_text(err));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    throw CollectiveError(ErrorCode::kAttach, fn + "cannot stat " + path + ": " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode) || uint64_t(st.st_size) != d.bytes) {
    const bool reg = S_ISREG(st.st_mode);
    const uint64_t size = uint64_t(st.st_size);
    close(fd);
    throw CollectiveError(ErrorCode::kAttach,
                          fn + "fd " + std::to_string(d.fd) + " of process " + std::to_string(d.pid) +
                              " is not this group (" +
                              (reg ? "its size is " + std::to_string(size) + " bytes, expected " +
                                         std::to_string(d.bytes)
                                   : std::string("not a shared-memory file")) +
                              "): was the group closed and the fd number reused?");
  }
  void* p = mmap(nullptr, L.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int map_err = errno;
  close(fd);  // the mapping keeps the memory alive
  if (p == MAP_FAILED)
    throw CollectiveError(ErrorCode::kSystem, fn + "mmap of " + path + " failed: " + errno_text(map_err));
  auto region = std::make_shared<Region>();
  region->base = static_cast<uint8_t*>(p);
  region->bytes = L.total;
  region->layout = L;

  const HeaderLine* h = region->header();
  std::string bad;
  if (h->magic != kMagic) bad = "bad magic (it is not a Troupe collectives region)";
  else if (h->version != kVersion) bad = "region version " + std::to_string(h->version) + ", expected " + std::to_string(kVersion);
  else if (h->id != d.id) bad = "its id differs from the descriptor's (another group reused the fd number?)";
  else if (h->nranks != d.ranks) bad = "it has " + std::to_string(h->nranks) + " ranks, the descriptor says " + std::to_string(d.ranks);
  else if (h->capacity != d.capacity || h->bcast_capacity != d.bcast_capacity || h->total_bytes != d.bytes)
    bad = "its capacities differ from the descriptor's";
  else if (__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) != 1) bad = "it is not initialized";
  if (!bad.empty())
    throw CollectiveError(ErrorCode::kAttach, fn + path + " does not hold the described group: " + bad);
  const uint32_t epoch = __atomic_load_n(region->epoch(), __ATOMIC_ACQUIRE);
  if (epoch != 0)
    throw CollectiveError(ErrorCode::kAborted, fn + "the group was aborted (epoch " + std::to_string(epoch) +
                                                   "); re-create it");
  RankLine* me = region->rank(uint32_t(rank));
  uint32_t free_claim = 0;
  if (!__atomic_compare_exchange_n(&me->claim, &free_claim, 1u, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    throw CollectiveError(ErrorCode::kAttach, fn + "rank " + std::to_string(rank) +
                                                  " is already attached (by pid " +
                                                  std::to_string(__atomic_load_n(&me->pid, __ATOMIC_RELAXED)) +
                                                  "); each rank attaches once");
  __atomic_store_n(&me->pid, uint32_t(getpid()), __ATOMIC_RELAXED);

  std::unique_ptr<ShmGroup> g(new ShmGroup());
  g->region_ = region;
  g->desc_ = d;
  g->rank_ = rank;
  g->spin_ns_ = spin_ns;
  g->ar_gen_ = load_acquire(&me->arrive);  // re-attaching continues where the rank left off
  g->bc_gen_ = load_acquire(&me->ack);
  return g;
#endif
}

ShmGroup::~ShmGroup() {
  if (region_ && rank_ >= 0) __atomic_store_n(&region_->rank(uint32_t(rank_))->claim, 0u, __ATOMIC_RELEASE);
}

void ShmGroup::CheckUsable(const char* what) const {
  if (rank_ < 0)
    throw CollectiveError(ErrorCode::kState, std::string(what) +
                                                 ": the creator's handle is not a rank; attach a rank to take part");
  if (!broken_.empty())
    throw CollectiveError(ErrorCode::kBroken, std::string(what) + ": this group is unusable after an earlier failure (" +
                                                  broken_ + "); re-create the group");
  const uint32_t e = __atomic_load_n(region_->epoch(), __ATOMIC_ACQUIRE);
  if (e != 0)
    throw CollectiveError(ErrorCode::kAborted, std::string(what) + " (rank " + std::to_string(rank_) +
                                                   "): collective aborted: epoch changed to " +
                                                   std::to_string(e) + " (a peer died?); re-create the group");
}

// ---- all-reduce ------------------------------------------------------------------

void ShmGroup::AllReduce(float* data, size_t n, double timeout_ms, size_t segments) {
#if !TROUPE_HAVE_SHM_COLLECTIVES
  (void)data;
  (void)n;
  (void)timeout_ms;
  (void)segments;
  unsupported();
#else
  CheckUsable("allReduce");
  const Region& R = *region_;
  const uint32_t nranks = desc_.ranks;
  if (n > desc_.capacity / sizeof(float))
    throw CollectiveError(ErrorCode::kRange, "allReduce: " + std::to_string(n) + " elements (" +
                                                 std::to_string(n * sizeof(float)) +
                                                 " bytes) exceed the group's capacity of " +
                                                 std::to_string(desc_.capacity) + " bytes");
  if (segments == 0 || n % segments != 0)
    throw CollectiveError(ErrorCode::kRange, "allReduce: " + std::to_string(n) + " elements do not split into " +
                                                 std::to_string(segments) + " equal segments");
  const uint32_t me = uint32_t(rank_);
  const uint32_t g = ar_gen_ + 1;
  const uint32_t p = g & 1;
  const int64_t deadline = deadline_after(timeout_ms);

  RankLine* mine = R.rank(me);
  if (n != 0) std::memcpy(R.slot(me, p), data, n * sizeof(float));
  __atomic_store_n(&mine->len[p], uint64_t(n), __ATOMIC_RELAXED);
  publish(&mine->arrive, &mine->arrive_waiters, g);
  ar_gen_ = g;  // published: this generation is spent whatever happens next

  Waiter w(*this, R, deadline);
  for (uint32_t q = 0; q < nranks; ++q) {
    if (q == me) continue;
    RankLine* peer = R.rank(q);
    const WaitResult res = w.wait(&peer->arrive, &peer->arrive_waiters, g);
    if (res == WaitResult::kOk) continue;
    if (res == WaitResult::kAborted) {
      broken_ = "allReduce aborted: epoch changed";
      throw CollectiveError(ErrorCode::kAborted,
                            "allReduce (rank " + std::to_string(me) + ", generation " + std::to_string(g) +
                                "): collective aborted: epoch changed (a peer died?); re-create the group");
    }
    std::vector<uint32_t> missing;
    for (uint32_t k = 0; k < nranks; ++k)
      if (k != me && !reached(load_acquire(&R.rank(k)->arrive), g)) missing.push_back(k);
    broken_ = "allReduce timed out";
    throw CollectiveError(ErrorCode::kTimeout,
                          "allReduce timed out after " + fmt_ms(timeout_ms) + " ms (rank " + std::to_string(me) +
                              ", generation " + std::to_string(g) + "): rank(s) " + join_ranks(missing) +
                              " did not arrive");
  }

  // Every rank published generation g; its slot of parity p is stable until it
  // arrives at g+1, which needs our arrival at g+1 (see the header).
  // With segments, every rank's vector is `segments` parts of m elements and
  // the result (m elements, into data[0, m)) folds all parts left to right in
  // (rank, part) order: the same additions a single rank summing those parts
  // in order would make (tensor parallelism's row-parallel layers rely on it).
  const size_t m = n / segments;
  std::vector<const float*> src(size_t(nranks) * segments);
  bool same = true;
  for (uint32_t q = 0; q < nranks; ++q) {
    for (size_t s = 0; s < segments; ++s) src[q * segments + s] = R.slot(q, p) + s * m;
    if (__atomic_load_n(&R.rank(q)->len[p], __ATOMIC_RELAXED) != n) same = false;
  }
  if (!same) {
    std::string lens;
    for (uint32_t q = 0; q < nranks; ++q)
      lens += (q ? ", " : "") + std::string("rank ") + std::to_string(q) + " has " +
              std::to_string(__atomic_load_n(&R.rank(q)->len[p], __ATOMIC_RELAXED));
    throw CollectiveError(ErrorCode::kMismatch, "allReduce: ranks passed different lengths in generation " +
                                                    std::to_string(g) + ": " + lens + " elements");
  }
  if (src.size() > 1 && m != 0) fold_rank_order(data, src.data(), uint32_t(src.size()), m);
  n_all_reduces_.fetch_add(1, std::memory_order_relaxed);
  n_bytes_reduced_.fetch_add(n * sizeof(float), std::memory_order_relaxed);
#endif
}

// ---- broadcast ---------------------------------------------------------------------

size_t ShmGroup::Broadcast(uint32_t root, uint8_t* dst_or_src, size_t n,
                           const std::function<uint8_t*(size_t)>& alloc, double timeout_ms) {
#if !TROUPE_HAVE_SHM_COLLECTIVES
  (void)root;
  (void)dst_or_src;
  (void)n;
  (void)alloc;
  (void)timeout_ms;
  unsupported();
#else
  CheckUsable("broadcast");
  const Region& R = *region_;
  const uint32_t nranks = desc_.ranks;
  if (root >= nranks)
    throw CollectiveError(ErrorCode::kRange, "broadcast: root " + std::to_string(root) +
                                                 " is out of range for a group of " + std::to_string(nranks) +
                                                 " ranks");
  const uint32_t me = uint32_t(rank_);
  const uint32_t g = bc_gen_ + 1;
  const uint32_t p = g & 1;
  BcastLine* bl = R.bcast();
  RankLine* mine = R.rank(me);
  Waiter w(*this, R, deadline_after(timeout_ms));

  if (me == root) {
    if (n > desc_.bcast_capacity)
      throw CollectiveError(ErrorCode::kRange, "broadcast: " + std::to_string(n) +
                                                   " bytes exceed the group's broadcast capacity of " +
                                                   std::to_string(desc_.bcast_capacity) + " bytes");
    // Slot p last held generation g-2: every rank must be done with it.
    for (uint32_t q = 0; q < nranks; ++q) {
      if (q == me) continue;
      RankLine* peer = R.rank(q);
      const WaitResult res = w.wait(&peer->ack, &peer->ack_waiters, g - 2);
      if (res == WaitResult::kOk) continue;
      if (res == WaitResult::kAborted) {
        broken_ = "broadcast aborted: epoch changed";
        throw CollectiveError(ErrorCode::kAborted,
                              "broadcast (root " + std::to_string(me) + ", generation " + std::to_string(g) +
                                  "): collective aborted: epoch changed (a peer died?); re-create the group");
      }
      std::vector<uint32_t> missing;
      for (uint32_t k = 0; k < nranks; ++k)
        if (k != me && !reached(load_acquire(&R.rank(k)->ack), g - 2)) missing.push_back(k);
      broken_ = "broadcast timed out";
      throw CollectiveError(ErrorCode::kTimeout,
                            "broadcast timed out after " + fmt_ms(timeout_ms) + " ms (root " + std::to_string(me) +
                                ", generation " + std::to_string(g) + "): rank(s) " + join_ranks(missing) +
                                " did not receive generation " + std::to_string(g - 2));
    }
    if (n != 0) std::memcpy(R.bslot(p), dst_or_src, n);
    __atomic_store_n(&bl->root[p], root, __ATOMIC_RELAXED);
    __atomic_store_n(&bl->len[p], uint64_t(n), __ATOMIC_RELAXED);
    publish(&bl->gen, &bl->gen_waiters, g);
    bc_gen_ = g;
    publish(&mine->ack, &mine->ack_waiters, g);
    n_bc_sent_.fetch_add(1, std::memory_order_relaxed);
    return n;
  }

  const WaitResult res = w.wait(&bl->gen, &bl->gen_waiters, g);
  if (res == WaitResult::kAborted) {
    broken_ = "broadcast aborted: epoch changed";
    throw CollectiveError(ErrorCode::kAborted,
                          "broadcast (rank " + std::to_string(me) + " from root " + std::to_string(root) +
                              ", generation " + std::to_string(g) +
                              "): collective aborted: epoch changed (a peer died?); re-create the group");
  }
  if (res == WaitResult::kTimeout) {
    broken_ = "broadcast timed out";
    throw CollectiveError(ErrorCode::kTimeout,
                          "broadcast timed out after " + fmt_ms(timeout_ms) + " ms (rank " + std::to_string(me) +
                              ", generation " + std::to_string(g) + "): root rank " + std::to_string(root) +
                              " did not send");
  }
  const uint32_t sent_root = __atomic_load_n(&bl->root[p], __ATOMIC_RELAXED);
  if (sent_root != root) {
    broken_ = "broadcast root mismatch";
    throw CollectiveError(ErrorCode::kMismatch, "broadcast: rank " + std::to_string(me) + " expected root " +
                                                    std::to_string(root) + " in generation " + std::to_string(g) +
                                                    " but rank " + std::to_string(sent_root) + " sent it");
  }
  const size_t len = size_t(__atomic_load_n(&bl->len[p], __ATOMIC_RELAXED));
  uint8_t* dst = dst_or_src;
  if (dst != nullptr && len > n)
    throw CollectiveError(ErrorCode::kRange, "broadcast: the message is " + std::to_string(len) +
                                                 " bytes but the receive buffer has " + std::to_string(n) +
                                                 "; call again with a buffer of at least " + std::to_string(len) +
                                                 " bytes (the message stays pending)");
  if (dst == nullptr) dst = alloc(len);  // may throw; the message then stays pending
  if (len != 0) std::memcpy(dst, R.bslot(p), len);
  bc_gen_ = g;
  publish(&mine->ack, &mine->ack_waiters, g);
  n_bc_received_.fetch_add(1, std::memory_order_relaxed);
  return len;
#endif
}

// ---- epoch, stats ----------------------------------------------------------------------

uint32_t ShmGroup::BumpEpoch() {
#if !TROUPE_HAVE_SHM_COLLECTIVES
  unsupported();
#else
  const Region& R = *region_;
  const uint32_t e = __atomic_add_fetch(R.epoch(), 1u, __ATOMIC_SEQ_CST);
  futex_wake_all(&R.bcast()->gen);
  for (uint32_t q = 0; q < desc_.ranks; ++q) {
    futex_wake_all(&R.rank(q)->arrive);
    futex_wake_all(&R.rank(q)->ack);
  }
  return e;
#endif
}

uint32_t ShmGroup::Epoch() const { return __atomic_load_n(region_->epoch(), __ATOMIC_ACQUIRE); }

Stats ShmGroup::stats() const {
  Stats s;
  s.all_reduces = n_all_reduces_.load(std::memory_order_relaxed);
  s.broadcasts_sent = n_bc_sent_.load(std::memory_order_relaxed);
  s.broadcasts_received = n_bc_received_.load(std::memory_order_relaxed);
  s.bytes_reduced = n_bytes_reduced_.load(std::memory_order_relaxed);
  s.spin_waits = n_spin_waits_.load(std::memory_order_relaxed);
  s.futex_waits = n_futex_waits_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace coll
}  // namespace troupe
