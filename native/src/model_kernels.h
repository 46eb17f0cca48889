// The forward pass's kernels, one table per ISA (src/kernels/model_<isa>.cc
// instantiates gemm_impl.h and model_kernels_impl.h with that ISA's flags).
// Every entry works on a caller-chosen range so the thread pool can split the
// work; no entry's result depends on how the range was split.
//
// Shapes (row-major, fp32 unless said):
//   activations  [T, H]       one row per token of the flat batch
//   qkv          [T, (Hq + 2 Hkv) * D]   q heads, then k heads, then v heads
//   gate_up      [T, 2 I]     gate in columns [0, I), up in [I, 2I)
#pragma once

#include <cstddef>
#include <cstdint>

#include "isa.h"
#include "kv_layout.h"

namespace troupe {

// One attention work item: query rows [q_begin, q_end) of sequence `seq`
// (indices within that sequence's query tokens), for query head `head`.
struct AttentionTask {
  uint32_t seq;
  uint32_t head;
  uint32_t q_begin;
  uint32_t q_end;
};

struct AttentionArgs {
  const float* q;            // [T, ld_q], head h at columns [h*D, (h+1)*D)
  size_t ld_q;
  float* out;                // [T, ld_out], head h at columns [h*D, (h+1)*D)
  size_t ld_out;
  const void* kv;            // this layer's pages (kv_layout.h), bf16 bits or fp32
  KvLayout layout;
  const int32_t* query_start;   // [S + 1]: the first flat row of each sequence's queries
  const int32_t* context_lens;  // [S]: tokens in the cache after this step (prefix + queries)
  const int32_t* block_tables;  // [S, max_blocks]
  size_t max_blocks;
  size_t num_heads;             // query heads; kv head of h = h / (num_heads / num_kv_heads)
  float scale;                  // 1 / sqrt(D)
};

struct ModelKernels {
  // gemm_impl.h: out[m, n] for n in [n0, n1) = sum of `segments` fixed K-ranges, added in order.
  void (*gemm_bf16)(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t n0,
                    size_t n1, size_t ldo, size_t K, size_t segments);
  void (*gemm_f32)(const float* w, const float* x, float* out, size_t M, size_t n0, size_t n1,
                   size_t ldo, size_t K, size_t segments);
  // out[r] = x[r] * (1 / sqrt(mean(x[r]^2) + eps)) * weight, rows [r0, r1) of [*, H]; out may be x.
  void (*rms_norm)(const float* x, const float* weight, float* out, size_t r0, size_t r1,
                   size_t H, float eps);
  // Rotate-half RoPE in place on `heads` heads of D at the start of each row
  // [r0, r1) of x (row stride ld); cos_sin [T, D] holds cos in [0, D/2), sin in [D/2, D).
  void (*rope)(float* x, size_t ld, size_t heads, size_t D, const float* cos_sin, size_t r0,
               size_t r1);
  // out[r, i] = silu(gate_up[r, i]) * gate_up[r, I + i], rows [r0, r1).
  void (*silu_mul)(const float* gate_up, float* out, size_t r0, size_t r1, size_t I);
  // Writes k / v rows [r0, r1) (row stride ld, Hkv heads of D each) into the pages at slots[r]
  // (slot < 0: skipped). bf16 caches round to nearest even.
  void (*kv_write)(const float* k, const float* v, size_t ld, const int32_t* slots, size_t r0,
                   size_t r1, void* kv, const KvLayout& layout);
  // Paged attention for tasks [t0, t1) (kv_layout.h has the algorithm).
  void (*attention)(const AttentionArgs& args, const AttentionTask* tasks, size_t t0, size_t t1);
  // e^x in fp32 for x in [-87.3, 88.3] (0 below, clamped above); portable, bitwise the
  // same on every ISA. Used by softmax, SiLU and the log-sum-exp.
  void (*exp_f32)(const float* x, float* out, size_t n);
  // Streaming log-sum-exp state of one row over a vocab tile: tile_max = max(l),
  // tile_sum = sum exp(l - tile_max) (fp32 terms, fp64 sum, in index order).
  void (*tile_lse)(const float* logits, size_t n, float* tile_max, double* tile_sum);
};

// The table for `isa`, or nullptr when this build lacks it.
const ModelKernels* model_kernels(Isa isa);

const ModelKernels* model_kernels_scalar();
#if defined(TROUPE_X86)
const ModelKernels* model_kernels_avx2();
const ModelKernels* model_kernels_avx512();
const ModelKernels* model_kernels_avx512bf16();
#endif

}  // namespace troupe
