// The tensor-parallel pieces of Model::step (model_parallel.h has the layouts
// and why each reduction is bit-identical to a single rank). Every rank of a
// tensor group runs the same step with the same input, so every rank makes
// the same sequence of all-reduce calls with the same lengths.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/fp8/e4m3.h"
#include "model/linear_gemm.h"
#include "model/model.h"

namespace troupe {
namespace {

// -0.0f: the identity of IEEE addition, as bits (model_parallel.h).
constexpr uint32_t kNegZeroBits = 0x80000000u;

void fill_neg_zero(float* p, size_t n) {
  float z;
  std::memcpy(&z, &kNegZeroBits, sizeof z);
  std::fill(p, p + n, z);
}

float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

size_t Model::tp_chunk_rows(size_t T) const {
  const size_t per_row = shard_.local_segments() * shape_.hidden * sizeof(float);
  return std::max<size_t>(1, std::min(T, shard_.group->capacity() / per_row));
}

size_t Model::tp_logit_rows() const {
  return std::max<size_t>(1, shard_.group->capacity() / (shape_.vocab * sizeof(float)));
}

void Model::all_reduce(float* data, size_t n, size_t segments) {
  shard_.group->AllReduce(data, n, shard_.timeout_ms, segments);
  counters_.all_reduces.fetch_add(1, std::memory_order_relaxed);
  counters_.all_reduce_bytes.fetch_add(n * sizeof(float), std::memory_order_relaxed);
}

// The input of a row-parallel linear (o_proj, down_proj) for x [M, K], K =
// this rank's columns. As linear_input, except for an FP8 linear with dynamic
// activation scales under tensor parallelism: a token's scale must come from
// the absmax of its WHOLE row (all K, every rank's columns), as at tp 1, so
// that each rank quantizes its columns exactly as the single rank does. The
// ranks exchange their rows' local absmax through one sum all-reduce over
// [tp, rows] vectors holding -0.0 except in the rank's own row (exact: the
// -0.0 identity above; absmax values are >= +0), then each takes the max over
// ranks (max is exact in any order). Static input scales need nothing.
//   gather  scratch [tp, M]
LinearInput Model::row_linear_input(const Linear& lin, const float* x, uint16_t* xb, float* xs, size_t M, size_t K,
                                    float* gather) {
  if (!shard_.parallel() || !lin.fp8() || lin.input_scale > 0.0f) return linear_input(lin, x, xb, xs, M, K);
  const size_t tp = shard_.tp_size, me = shard_.tp_rank;
  // xs[m] = max |x[m, :]| over this rank's columns (what quantize_e4m3 takes over a whole row).
  parallel_rows(M, std::max<size_t>(1, (size_t{1} << 15) / K), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) xs[r] = k_->abs_max(x + r * K, K);
  });
  const size_t chunk = std::max<size_t>(1, std::min(M, shard_.group->capacity() / (tp * sizeof(float))));
  for (size_t r0 = 0; r0 < M; r0 += chunk) {
    const size_t rc = std::min(chunk, M - r0);
    fill_neg_zero(gather, tp * rc);
    std::copy(xs + r0, xs + r0 + rc, gather + me * rc);
    all_reduce(gather, tp * rc, 1);
    for (size_t i = 0; i < rc; ++i) {
      float amax = gather[i];
      for (size_t q = 1; q < tp; ++q) amax = std::fmax(amax, gather[q * rc + i]);
      xs[r0 + i] = fp8_activation_scale(amax, lin.act_ub);
    }
  }
  // Each row quantized with its whole-row scale (passed as that row's static scale).
  parallel_rows(M, std::max<size_t>(1, (size_t{1} << 15) / K), [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) k_->quantize_e4m3(x, xb, xs, r, r + 1, K, lin.act_ub, xs[r]);
  });
  return {xb, xs};
}

// x += o_proj / down_proj of this rank's K columns, folded with the peers'.
//   lin      weight [segments][H, k_j] (segment-major, model_parallel.h): bf16 / fp32, or
//            FP8 codes with per-output-row scales [H] (whole: every segment uses them)
//   input    [T, K] GEMM input (bf16 bits, fp32, or FP8 values as bf16 bits with row
//            scales [T]: row_linear_input), K = this rank's columns
//   seg_in   scratch for input re-laid out as [segment][T][k_j]
//   partials scratch [local segments, chunk rows, H]
// Each segment is one GEMM with K = its width and one segment: the bf16 / fp32
// GEMM gives P_g, the FP8 GEMM fp32(P_g * fp32(s_x[m] * s_w[n])), the very
// terms tp 1 adds left to right (gemm_impl.h, kernels/fp8/gemm_fp8_impl.h).
void Model::row_parallel(const Linear& lin, LinearInput input, size_t T, size_t K, float* x, uint8_t* seg_in,
                         float* partials) {
  const size_t H = shape_.hidden, segs = shard_.local_segments(), elem = shape_.bf16 ? 2 : 4;
  const size_t welem = lin.elem_bytes();
  const uint8_t* src = static_cast<const uint8_t*>(input.x);
  for (size_t j = 0; j < segs; ++j) {
    const SegmentRange sr = local_segment(shard_, K, j);
    const size_t k = sr.end - sr.begin;
    uint8_t* dst = seg_in + T * sr.begin * elem;
    for (size_t t = 0; t < T; ++t) std::memcpy(dst + t * k * elem, src + (t * K + sr.begin) * elem, k * elem);
  }
  const size_t chunk = tp_chunk_rows(T);
  for (size_t r0 = 0; r0 < T; r0 += chunk) {
    const size_t rc = std::min(chunk, T - r0);
    for (size_t j = 0; j < segs; ++j) {
      const SegmentRange sr = local_segment(shard_, K, j);
      const size_t k = sr.end - sr.begin;
      Linear wj = lin;  // segment j's [H, k] matrix; FP8 scales stay per output row
      wj.w = static_cast<const uint8_t*>(lin.w) + H * sr.begin * welem;
      const LinearInput xj{seg_in + (T * sr.begin + r0 * k) * elem, input.scales != nullptr ? input.scales + r0 : nullptr};
      counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
      counters_.weight_bytes_read.fetch_add(H * k * welem, std::memory_order_relaxed);
      linear_parallel(pool_, *k_, f8_, wj, xj, partials + j * rc * H, rc, H, k, H, 1, NoEpilogue{});
    }
    // partials[0, rc H) becomes ((P_0 + P_1) + ...) + P_7 over the whole group.
    all_reduce(partials, segs * rc * H, segs);
    float* xr = x + r0 * H;
    for (size_t i = 0; i < rc * H; ++i) xr[i] = xr[i] + partials[i];
  }
}

// x [T, H] = embedding rows of the step's tokens: this rank's vocab rows, the
// peers' rows through the all-reduce (-0.0 elsewhere).
void Model::embed_tokens(const StepInput& in, float* x) {
  const size_t T = in.tokens.size(), H = shape_.hidden;
  const size_t v0 = shard_.vocab_begin, v1 = shard_.vocab_end;
  for (size_t t = 0; t < T; ++t) {
    const size_t id = static_cast<size_t>(in.tokens[t]);
    float* row = x + t * H;
    if (id < v0 || id >= v1) {
      fill_neg_zero(row, H);
    } else if (shape_.bf16) {
      const uint16_t* e = static_cast<const uint16_t*>(w_.embed) + (id - v0) * H;
      for (size_t i = 0; i < H; ++i) row[i] = bf16_to_float(e[i]);
    } else {
      const float* e = static_cast<const float*>(w_.embed) + (id - v0) * H;
      std::copy(e, e + H, row);
    }
  }
  if (!shard_.parallel()) return;
  const size_t chunk = std::max<size_t>(1, shard_.group->capacity() / (H * sizeof(float)));
  for (size_t r0 = 0; r0 < T; r0 += chunk) all_reduce(x + r0 * H, std::min(chunk, T - r0) * H, 1);
}

// out [rows, V] = the full logits of `rows` normalized rows (input: the lm
// head's GEMM input [rows, H], FP8 with its row scales when the head is FP8):
// this rank's vocab rows of the head, the peers' through the all-reduce.
// Each logit is one dot product over H (times its two scales when FP8), the
// same whoever computes it.
void Model::gather_logits(LinearInput input, size_t rows, float* out) {
  const size_t H = shape_.hidden, V = shape_.vocab, v0 = shard_.vocab_begin, Vl = shard_.local_vocab();
  fill_neg_zero(out, rows * V);
  counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
  counters_.weight_bytes_read.fetch_add(Vl * H * w_.lm_head.elem_bytes(), std::memory_order_relaxed);
  linear_parallel(pool_, *k_, f8_, w_.lm_head, input, out + v0, rows, Vl, H, V, 1, NoEpilogue{});
  all_reduce(out, rows * V, 1);
}

}  // namespace troupe
