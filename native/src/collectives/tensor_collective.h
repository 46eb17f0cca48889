// What a tensor-parallel model step needs from its tensor group: an in-place
// all-reduce that folds every rank's vector (or its segments) in rank order.
// Two implementations:
//   ShmGroup   (shm_group.h)   ranks on one machine: shared memory and futexes
//   LinkGroup  (link_group.h)  ranks on different nodes: the vectors travel as
//                              actor messages over the node links (JS moves them)
// Both fold with fold_rank_order below, so the bits do not depend on which
// one a group uses (model_parallel.h: bit-identical to a single rank).
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {
namespace coll {

class TensorCollective {
 public:
  virtual ~TensorCollective() = default;
  virtual uint32_t ranks() const = 0;
  virtual int32_t rank() const = 0;
  // Bytes one rank's vector may have in one all-reduce.
  virtual uint64_t capacity() const = 0;
  // In place: data[0..n) becomes the rank-order sum over all ranks. With
  // segments > 1 every rank's vector is `segments` parts of m = n / segments
  // elements, and data[0, m) becomes the left-to-right fold of all parts in
  // (rank, part) order. Bounded by timeout_ms; throws CollectiveError.
  virtual void AllReduce(float* data, size_t n, double timeout_ms, size_t segments) = 0;
  // Releases every waiter of this handle (a peer died); the group is unusable after.
  virtual void Abort() = 0;
};

// out[i] = ((src[0][i] + src[1][i]) + src[2][i]) + ... (source order), in
// blocks that stay in L1. Element-wise, so vectorizing does not change the
// result. out must not overlap any source.
inline void fold_rank_order(float* __restrict out, const float* const* src, uint32_t nsrc, size_t n) {
  constexpr size_t kBlock = 2048;
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t e = n - b < kBlock ? n : b + kBlock;
    {
      const float* __restrict s0 = src[0];
      const float* __restrict s1 = src[1];
      for (size_t i = b; i < e; ++i) out[i] = s0[i] + s1[i];
    }
    for (uint32_t q = 2; q < nsrc; ++q) {
      const float* __restrict s = src[q];
      for (size_t i = b; i < e; ++i) out[i] += s[i];
    }
  }
}

}  // namespace coll
}  // namespace troupe
