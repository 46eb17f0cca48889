#include "collectives/link_group.h"

#include <chrono>
#include <cstring>
#include <utility>

namespace troupe {
namespace coll {

LinkGroup::LinkGroup(uint32_t ranks, int32_t rank, uint64_t capacity, Sender send)
    : ranks_(ranks), rank_(rank), capacity_(capacity), send_(std::move(send)) {
  if (ranks < 2 || ranks > kMaxRanks)
    throw CollectiveError(ErrorCode::kRange, "linkCreate: ranks must be in 2.." + std::to_string(kMaxRanks) + ", got " + std::to_string(ranks));
  if (rank < 0 || uint32_t(rank) >= ranks)
    throw CollectiveError(ErrorCode::kRange, "linkCreate: rank must be in 0.." + std::to_string(ranks - 1) + ", got " + std::to_string(rank));
  if (capacity < 4 || capacity > kMaxCapacity || capacity % 4 != 0)
    throw CollectiveError(ErrorCode::kRange, "linkCreate: capacityBytes must be a multiple of 4 (fp32) in 4.." + std::to_string(kMaxCapacity) +
                                                 ", got " + std::to_string(capacity));
}

void LinkGroup::AllReduce(float* data, size_t n, double timeout_ms, size_t segments) {
  if (n > capacity_ / sizeof(float))
    throw CollectiveError(ErrorCode::kRange, "allReduce: " + std::to_string(n) + " elements exceed the group's capacity of " +
                                                 std::to_string(capacity_) + " bytes");
  if (segments == 0 || n % segments != 0)
    throw CollectiveError(ErrorCode::kRange, "allReduce: " + std::to_string(n) + " elements do not split into " +
                                                 std::to_string(segments) + " equal segments");
  uint32_t g;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken_.empty()) throw CollectiveError(ErrorCode::kBroken, "allReduce: the group is unusable (" + broken_ + "); re-create it");
    g = ++gen_;
    n_ = n;
    parts_.assign(size_t(ranks_) * n, 0.0f);
    have_.assign(ranks_, 0);
    std::memcpy(parts_.data() + size_t(rank_) * n, data, n * sizeof(float));
    have_[size_t(rank_)] = 1;
    have_count_ = 1;
    waiting_ = true;
  }
  if (!send_(g, std::vector<float>(data, data + n))) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_ = false;
    broken_ = "closed";
    throw CollectiveError(ErrorCode::kClosed, "allReduce (rank " + std::to_string(rank_) + ", generation " + std::to_string(g) +
                                                  "): the link group is closing");
  }
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(timeout_ms);
  const bool done = cv_.wait_until(lock, deadline, [&] { return have_count_ == ranks_ || !broken_.empty(); });
  waiting_ = false;
  if (!broken_.empty())
    throw CollectiveError(broken_code_, "allReduce (rank " + std::to_string(rank_) + ", generation " + std::to_string(g) + "): " + broken_);
  if (!done) {
    std::string missing;
    for (uint32_t q = 0; q < ranks_; ++q)
      if (!have_[q]) missing += (missing.empty() ? "" : ", ") + std::to_string(q);
    broken_ = "timed out";
    throw CollectiveError(ErrorCode::kTimeout, "allReduce timed out after " + std::to_string(int64_t(timeout_ms)) + " ms (rank " +
                                                   std::to_string(rank_) + ", generation " + std::to_string(g) + "): rank(s) " + missing +
                                                   " did not arrive over the node link");
  }
  const size_t m = n / segments;
  std::vector<const float*> src(size_t(ranks_) * segments);
  for (uint32_t q = 0; q < ranks_; ++q)
    for (size_t s = 0; s < segments; ++s) src[q * segments + s] = parts_.data() + size_t(q) * n + s * m;
  if (m != 0) fold_rank_order(data, src.data(), uint32_t(src.size()), m);
  stats_.all_reduces++;
  stats_.bytes_reduced += n * sizeof(float);
  stats_.bytes_sent += n * sizeof(float) * (ranks_ - 1);
}

std::string LinkGroup::Put(uint32_t generation, uint32_t from, const float* data, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string why;
  if (!broken_.empty()) return "the group is unusable (" + broken_ + ")";
  if (from >= ranks_ || from == uint32_t(rank_)) {
    why = "a vector from rank " + std::to_string(from) + ", which is not a peer in a group of " + std::to_string(ranks_);
  } else if (!waiting_ || generation != gen_) {
    why = "rank " + std::to_string(from) + "'s vector of generation " + std::to_string(generation) + " arrived while generation " +
          std::to_string(gen_) + (waiting_ ? " waits" : " is done");
  } else if (have_[from]) {
    why = "rank " + std::to_string(from) + " sent generation " + std::to_string(generation) + " twice";
  } else if (n != n_) {
    why = "ranks passed different lengths in generation " + std::to_string(generation) + ": rank " + std::to_string(rank_) + " has " +
          std::to_string(n_) + ", rank " + std::to_string(from) + " has " + std::to_string(n) + " elements";
  }
  if (!why.empty()) {
    broken_ = why;
    broken_code_ = ErrorCode::kMismatch;
    cv_.notify_all();
    return why;
  }
  std::memcpy(parts_.data() + size_t(from) * n, data, n * sizeof(float));
  have_[from] = 1;
  stats_.bytes_received += n * sizeof(float);
  if (++have_count_ == ranks_) cv_.notify_all();
  return {};
}

void LinkGroup::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  if (broken_.empty()) {
    broken_ = "collective aborted (a peer died, or the rank stops); re-create the group";
    broken_code_ = ErrorCode::kAborted;
  }
  cv_.notify_all();
}

uint32_t LinkGroup::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gen_;
}

LinkStats LinkGroup::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace coll
}  // namespace troupe
