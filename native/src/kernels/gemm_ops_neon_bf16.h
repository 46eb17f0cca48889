// GEMM lane operations for the neon-bf16 path (ARM64 with FEAT_BF16); see
// gemm_impl.h for the Ops contract. Included only by translation units
// compiled with -march=armv8.2-a+bf16, inside their anonymous namespace.
//
// Bf16 weights: BFDOT (vbfdotq_f32) consumes 8 bf16 of K per instruction;
// lane l accumulates the pair k = 2l, 2l+1 of each 8-chunk. BFDOT is the one
// arithmetic of this path for every M (BFMMLA, 2 x 4 x 2 per instruction,
// would round its 4-term sums differently, so using it for prefill only would
// make a row's bits depend on the batch size). With FPCR.EBF = 0 BFDOT
// flushes denormal inputs and results and rounds its pair sum to odd, as the
// Arm ARM specifies; results differ from the neon path's FMA, so the tests
// compare against the reference with a tolerance and bitwise across M.
// F32 weights: NeonF32Ops (gemm_ops_neon.h), fp32 FMA.
//
// Register blocks (32 128-bit registers): M = 1: 1 x 4; M <= 64: 4 x 4
// (16 acc + 4 w + 1 x); prefill: 6 x 4 (24 + 4 + 1).
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/gemm_ops_neon.h"  // neon_reduce4, NeonF32Ops

namespace troupe {
namespace {

struct NeonBf16Ops {
  using Elem = uint16_t;  // bf16 bits
  using Acc = float32x4_t;
  using XVec = bfloat16x8_t;
  using WVec = bfloat16x8_t;
  static constexpr size_t kChunk = 8;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 4, kNBs = 4;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 6, kNB = 4;
  static void prefetch(const Elem* p) { __builtin_prefetch(p); }

  static Acc zero() { return vdupq_n_f32(0.0f); }
  static bfloat16x8_t load(const uint16_t* p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }
  static bfloat16x8_t load_tail(const uint16_t* p, size_t n) {
    uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, n * sizeof(uint16_t));
    return load(buf);
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  // The weight chunk of 8 values in K order, each exactly a bf16 (FP8): their top halves.
  static WVec w_from_f32(float32x4_t lo, float32x4_t hi) {
    return vreinterpretq_bf16_u16(vuzp2q_u16(vreinterpretq_u16_f32(lo), vreinterpretq_u16_f32(hi)));
  }
  static Acc dot(Acc acc, XVec x, WVec w) { return vbfdotq_f32(acc, x, w); }
  static float reduce(Acc a) { return neon_reduce4(a); }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
};

}  // namespace
}  // namespace troupe
