// What one rank of a tensor / pipeline group holds of the model, and the
// arithmetic that keeps every layout bit-identical to a single rank
// (DESIGN.md, Numerics).
//
// Tensor parallelism (tp ranks of one stage; the ModelShape a rank is created
// with is already its local shape: heads / tp q heads, max(1, kv_heads / tp)
// kv heads, intermediate / tp MLP columns; vocab stays the full V):
//   qkv, gate_up   column-parallel: the rank's rows of the fused matrices
//   o, down        row-parallel: the rank's K columns [K r / tp, K (r+1) / tp),
//                  stored SEGMENT-MAJOR (below), followed by an all-reduce
//   embed, lm_head vocab-parallel: rows [vocab_begin, vocab_end) of [V, H]
//
// Row-parallel segments. A single rank sums K of o_proj / down_proj in
// kRowSegments = 8 segments, segment g being columns [K g / 8, K (g+1) / 8)
// (gemm_impl.h): out = ((P_0 + P_1) + ...) + P_7, then x = x + out. A tp rank
// r owns global segments g = r * 8/tp .. (r+1) * 8/tp - 1 (tp divides 8). It
// computes each segment's partial P_g separately: a GEMM with K = the
// segment's width and one segment, which is the very same accumulation
// (same chunks from the segment's first column, same lane reduction). Its
// weights are stored segment by segment so that each is a plain [H, k_g]
// matrix:
//
//   o / down of rank r:  [ seg g0: H rows x k_g0 ][ seg g0+1: H x k_g0+1 ] ...
//
// and the GEMM input [T, K_r] is copied the same way into [seg][T][k_g]. The
// group's segmented all-reduce (tensor_collective.h; shared memory on one
// machine, the node link across nodes, the same fold) then folds all 8 partials
// in (rank, segment) order, left to right, starting from P_0: literally the
// additions of the single rank. Then x = x + sum, as the single rank's epilogue.
//
// FP8 linears (kernels/fp8/gemm_fp8_impl.h) shard the same way: qkv / gate_up take
// their rows of codes and of per-channel scales; o / down their K columns of
// codes, segment-major, each segment prepacked as its own [H, k_g] matrix
// with one segment (the chunk grid from the segment's first column, as tp 1),
// with the whole per-output-row scales. Per segment the FP8 GEMM yields
// fp32(P_g * fp32(s_x[m] * s_w[n])), exactly tp 1's term g, and the fold adds
// the terms in tp 1's order. s_x must be tp 1's: a static input scale is; a
// dynamic one comes from the absmax of the whole row, all ranks' columns,
// exchanged before quantizing (Model::row_linear_input). qkv / gate_up /
// lm head inputs are whole rows on every rank, quantized as at tp 1.
//
// Vocab-parallel embedding and lm head use a plain sum all-reduce over
// vectors a rank fills with -0.0 outside its own rows / columns: -0.0 is the
// exact identity of IEEE addition (-0 + v == v bit for bit, +0 and -0
// included), so the sum is the owner's value exactly.
//
// Pipeline parallelism: a rank holds layers [first, last) of the model
// (ModelShape::layers is their count); `embeds` (first stage) starts from the
// token embedding, otherwise from the previous stage's residual stream
// (StepInput::hidden); `lm_head` (last stage) ends with logits and sampling,
// otherwise the step returns the residual stream (StepOutput::hidden).
#pragma once

#include <cstddef>
#include <memory>

#include "collectives/tensor_collective.h"

namespace troupe {

constexpr size_t kRowSegments = 8;  // K segments of o_proj and down_proj (gemm_impl.h); FP8 weights are prepacked on this grid (per rank: its own segments)

struct RankShard {
  size_t tp_size = 1, tp_rank = 0;
  size_t vocab_begin = 0, vocab_end = 0;  // rows of embed / lm_head this rank holds ([0, V) at tp 1)
  bool embeds = true;                     // first pipeline stage
  bool lm_head = true;                    // last pipeline stage
  std::shared_ptr<coll::TensorCollective> group;  // the stage's tensor group (tp > 1): shared memory or node link
  double timeout_ms = 120000;             // every collective wait of a step

  bool parallel() const { return tp_size > 1; }
  size_t local_segments() const { return kRowSegments / tp_size; }
  size_t local_vocab() const { return vocab_end - vocab_begin; }
};

// Local column range of this rank's j-th segment of a row-parallel matrix whose
// local K is k_local (global K = k_local * tp).
struct SegmentRange {
  size_t begin, end;
};
inline SegmentRange local_segment(const RankShard& r, size_t k_local, size_t j) {
  const size_t K = k_local * r.tp_size, first = K * r.tp_rank / r.tp_size;
  const size_t g = r.tp_rank * r.local_segments() + j;
  return {K * g / kRowSegments - first, K * (g + 1) / kRowSegments - first};
}

}  // namespace troupe
