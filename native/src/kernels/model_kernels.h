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

#include "platform/isa.h"
#include "model/kv_layout.h"

namespace troupe {

// One attention work item: query rows [q_begin, q_end) of sequence `seq`
// (indices within that sequence's query tokens), for every query head of the
// GQA group that shares kv head `kv_head` (heads kv_head * group ..
// (kv_head + 1) * group - 1, group = num_heads / num_kv_heads): each K/V page
// is read once for the whole group.
struct AttentionTask {
  uint32_t seq;
  uint32_t kv_head;
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
  float scale;                  // 1 / sqrt(D) (times the layer's k_scale with an FP8 cache)
  float v_scale = 1.0f;         // FP8 cache: the output is multiplied by the layer's v_scale
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
  // m = silu(gate_up[r, c]) * gate_up[r, I + c] for rows [r0, r1), columns [c0, c1); written
  // to out[r * I + c] (fp32) and / or out_bf16[r * I + c] (rounded to bf16), each when not null.
  void (*silu_mul)(const float* gate_up, size_t I, size_t r0, size_t r1, size_t c0, size_t c1,
                   float* out, uint16_t* out_bf16);
  // out[i] = bf16(x[i]), round to nearest even (bf16.h's rounding, bit for bit).
  void (*round_bf16)(const float* x, uint16_t* out, size_t n);
  // max |x[i]| over i < n, NaNs skipped (0 when there are none): exact on every ISA.
  float (*abs_max)(const float* x, size_t n);
  // quantize_rows_e4m3 (fp8/e4m3.h) bit for bit, vectorized for this ISA: an FP8 linear's
  // activations, rows [r0, r1) of x [*, K] to bf16 bits of e4m3 values and per-row scales.
  void (*quantize_e4m3)(const float* x, uint16_t* xq, float* xs, size_t r0, size_t r1, size_t K, float ub,
                        float static_scale);
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
  // tile_sum = sum exp(l - tile_max) (fp32 terms; fp64 sum, lane l adding the terms
  // i = l mod 16 in order, lanes combined in a halving tree).
  void (*tile_lse)(const float* logits, size_t n, float* tile_max, double* tile_sum);
  // A grammar's token mask over one vocab tile, then tile_lse of the masked tile:
  // logits[j] = masked for each j in [0, n) whose bit j % 32 of words[j / 32] is clear
  // (the tile starts at a multiple of 32 ids), the others left as they are; tile_max
  // and tile_sum bitwise what tile_lse gives on the masked tile. Exact on every ISA.
  void (*masked_tile_lse)(float* logits, size_t n, const uint32_t* words, float masked, float* tile_max,
                          double* tile_sum);

  // Sampling primitives over one row of n logits (sampling.cc composes them);
  // y = x * s is the scaled logit (s = 1 / temperature > 0, or 1).
  // The largest x and the lowest index holding it (n > 0; NaN never wins unless all are NaN).
  void (*argmax)(const float* x, size_t n, float* max, size_t* index);
  // e[i] = y >= floor ? exp(y - m) : 0 for i < n (y <= m; the ISA's fastest exp, not
  // bitwise the same on every ISA; e may be null: not stored), and per block of
  // kSampleBlock entries sums[b] = its e summed in fp64 (lane l adding i = l mod 16,
  // lanes in a halving tree).
  void (*exp_blocks)(const float* x, size_t n, float s, float m, float floor, float* e, double* sums);
  // Writes the indices i in [*from, n) with y > t in increasing order, at most `cap` of them;
  // sets *from to where it stopped (n when it reached the end). Returns how many it wrote.
  size_t (*scan_greater)(const float* x, size_t n, float s, float t, size_t* from, int32_t* out,
                         size_t cap);
  // sums[b] = the e[i] of block b (kSampleBlock entries) with y >= floor, summed as exp_blocks does.
  void (*masked_sums)(const float* x, size_t n, float s, float floor, const float* e, double* sums);
  // The pairs (base + i, y = x[i] * s) with y > t, i ascending, into out_ids / out_y
  // (room for n + 16: whole vectors are stored); returns how many.
  size_t (*scan_greater_pairs)(const float* x, size_t n, float s, float t, int32_t base, int32_t* out_ids,
                               float* out_y);
  // The pairs (ids[i], y[i]) with y[i] > t, in order, into out_ids / out_y (room
  // for n + 16: whole vectors are stored; or in place); returns how many.
  size_t (*filter_greater)(const int32_t* ids, const float* y, size_t n, float t, int32_t* out_ids,
                           float* out_y);

  // Optional (null except on the amx and avx2 paths): the bf16 GEMM over x packed once per
  // GEMM (gemm_pack_x_once in gemm_parallel.h, for a model linear or gemm_parallel) instead
  // of per tile, for calls of at least packed_min_rows rows. gemm_bf16_packed gives
  // gemm_bf16's bits.
  //   packed_x_words(M, K, segments)  uint32 words of the packed x
  //   pack_x(xb, M, K, segments, b0, b1, packed)  writes row blocks [b0, b1) of 16 rows
  size_t (*packed_x_words)(size_t M, size_t K, size_t segments) = nullptr;
  void (*pack_x)(const uint16_t* xb, size_t M, size_t K, size_t segments, size_t b0, size_t b1,
                 uint32_t* packed) = nullptr;
  void (*gemm_bf16_packed)(const uint16_t* w, const uint32_t* packed, float* out, size_t M, size_t n0,
                           size_t n1, size_t ldo, size_t K, size_t segments) = nullptr;
  size_t packed_min_rows = 0;
};

// Entries per block of ModelKernels::exp_blocks.
constexpr size_t kSampleBlock = 1024;

// The table for `isa`, or nullptr when this build lacks it.
const ModelKernels* model_kernels(Isa isa);

const ModelKernels* model_kernels_scalar();
#if defined(TROUPE_ARM64)
const ModelKernels* model_kernels_neon();
const ModelKernels* model_kernels_neon_bf16();
#endif
#if defined(TROUPE_X86)
const ModelKernels* model_kernels_avx2();
const ModelKernels* model_kernels_avx512();
const ModelKernels* model_kernels_avx512bf16();
const ModelKernels* model_kernels_amx();
#endif

}  // namespace troupe
