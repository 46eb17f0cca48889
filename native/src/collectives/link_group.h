// A tensor group whose ranks sit on different nodes: each all-reduce's
// vectors travel as actor messages over the node links (TLS), moved by JS
// (actors/rank/tensor-link.ts); the fold is fold_rank_order, the same as the
// shared-memory group's, so a layout's bits do not depend on where its ranks run.
//
// All-reduce, generation g (each rank counts its own calls; all ranks make
// the same sequence of calls with the same lengths):
//   1. step thread: parts[me] = my vector; a copy goes to JS through `send`
//      (a thread-safe function): JS tells it to every peer, tagged (g, me);
//   2. JS thread: Put(g, q, vector) for each peer q's vector of generation g.
//      A peer runs at most one generation ahead (it needs my vector of g to
//      finish g), so JS holds at most one early vector per peer until step 1
//      of g+1 announced it;
//   3. step thread, once every part is in: data[0, m) = the left-to-right fold
//      of all ranks' parts in (rank, segment) order (tensor_collective.h).
//
//   parts_  [ranks][n] floats, rank q's vector of the generation in progress
//
// Bytes over the links per token (fp32 on the wire: the partials must be the
// single rank's exact terms), hidden size H, vocab V, L layers of the stage,
// tp ranks; each rank sends its vector to each of its tp - 1 peers:
//   row-parallel sums  2 per layer, each rank's 8 / tp segments of H:
//                      2 L x (8 / tp) H x 4 B per peer (tp 2: 16 L H B)
//   embedding (first stage), logits (last stage, per sampled row): the
//                      rank's own H / tp, V / tp x 4 B (JS drops the -0.0
//                      identity it holds elsewhere: actors/rank/tensor-link.ts)
// llama-3.2-1b (H 2048, L 16, V 128256) at tp 2: each rank sends 1 MiB of
// partials + 4 KiB + 250.5 KiB per decoded token (~2.5 MiB both ways), in
// 2 L + 2 = 34 exchanges per step; pp 2 hands on one hidden row, 8 KiB.
//
// Every wait is bounded by its timeout and by Abort() (a peer died, the rank
// stops); after either, or after peers disagree on a length, the group is
// unusable (generations no longer agree): make a new one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "collectives/shm_group.h"
#include "collectives/tensor_collective.h"

namespace troupe {
namespace coll {

struct LinkStats {
  uint64_t all_reduces = 0;
  uint64_t bytes_reduced = 0;  // this rank's vectors
  uint64_t bytes_sent = 0;     // handed to JS for the peers (vector bytes x peers)
  uint64_t bytes_received = 0; // peers' vectors put
};

class LinkGroup final : public TensorCollective {
 public:
  // Hands my vector of `generation` to JS; false when JS can no longer take it (closing).
  using Sender = std::function<bool(uint32_t generation, std::vector<float>&& part)>;

  LinkGroup(uint32_t ranks, int32_t rank, uint64_t capacity, Sender send);

  uint32_t ranks() const override { return ranks_; }
  int32_t rank() const override { return rank_; }
  uint64_t capacity() const override { return capacity_; }
  void AllReduce(float* data, size_t n, double timeout_ms, size_t segments) override;
  void Abort() override;

  // JS thread: peer `from`'s vector of `generation`. Returns an empty string
  // when taken, else why not (the waiting step then fails with it too).
  std::string Put(uint32_t generation, uint32_t from, const float* data, size_t n);
  // The generation of the call in progress (0 before the first).
  uint32_t generation() const;
  LinkStats stats() const;

 private:
  const uint32_t ranks_;
  const int32_t rank_;
  const uint64_t capacity_;
  Sender send_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint32_t gen_ = 0;      // generation in progress, or last completed
  bool waiting_ = false;  // a step thread waits for parts of gen_
  size_t n_ = 0;
  std::vector<float> parts_;
  std::vector<uint8_t> have_;
  uint32_t have_count_ = 0;
  std::string broken_;  // non-empty: why this group is unusable
  ErrorCode broken_code_ = ErrorCode::kBroken;
  LinkStats stats_;
};

}  // namespace coll
}  // namespace troupe
