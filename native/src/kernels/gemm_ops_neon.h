// GEMM lane operations for the neon path (ARM64 Advanced SIMD, baseline on
// every ARM64 CPU); see gemm_impl.h for the Ops contract. Included only by the
// neon translation units, inside their anonymous namespace.
//
// Bf16 weights: 4 bf16 of K per step (one 64-bit load), widened to fp32 by a
// 16-bit shift (SHLL), then one fused multiply-add per lane (FMLA). Lane l of
// an accumulator holds k = 4c + l of every chunk c; reduce() adds lanes
// (0 + 2, 1 + 3), then the pair. F32 weights: the same on fp32 loads.
//
// Register blocks (32 128-bit registers; Acc, XVec and WVec are one each):
//   M = 1       1 x 4: 4 acc + 4 w + 1 x
//   M <= 64     4 x 4: 16 acc + 4 w + 1 x
//   prefill     6 x 4: 24 acc + 4 w + 1 x
// One arithmetic for every block, so results are bit-identical across M.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace troupe {
namespace {

inline float neon_reduce4(float32x4_t a) {
  const float32x2_t s2 = vadd_f32(vget_low_f32(a), vget_high_f32(a));
  return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

// 4 bf16 (the low half of `bits` when given 8) -> 4 fp32.
inline float32x4_t neon_widen_bf16x4(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }

struct NeonOps {
  using Elem = uint16_t;  // bf16 bits
  using Acc = float32x4_t;
  using XVec = float32x4_t;
  using WVec = float32x4_t;
  static constexpr size_t kChunk = 4;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 4, kNBs = 4;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 6, kNB = 4;
  static void prefetch(const Elem* p) { __builtin_prefetch(p); }

  static Acc zero() { return vdupq_n_f32(0.0f); }
  static float32x4_t load(const uint16_t* p) { return neon_widen_bf16x4(vld1_u16(p)); }
  static float32x4_t load_tail(const uint16_t* p, size_t n) {
    uint16_t buf[4] = {0, 0, 0, 0};
    std::memcpy(buf, p, n * sizeof(uint16_t));
    return load(buf);
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  // The weight chunk of 8 widened values in K order (FP8): the first kChunk of them.
  static WVec w_from_f32(float32x4_t lo, float32x4_t) { return lo; }
  static Acc dot(Acc acc, XVec x, WVec w) { return vfmaq_f32(acc, x, w); }
  static float reduce(Acc a) { return neon_reduce4(a); }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
};

struct NeonF32Ops {
  using Elem = float;
  using Acc = float32x4_t;
  using XVec = float32x4_t;
  using WVec = float32x4_t;
  static constexpr size_t kChunk = 4;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 4, kNBs = 4;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 6, kNB = 4;
  static void prefetch(const Elem* p) { __builtin_prefetch(p); }

  static Acc zero() { return vdupq_n_f32(0.0f); }
  static float32x4_t load_x(const float* p) { return vld1q_f32(p); }
  static float32x4_t load_w(const float* p) { return vld1q_f32(p); }
  static float32x4_t load_x_tail(const float* p, size_t n) {
    float buf[4] = {0, 0, 0, 0};
    std::memcpy(buf, p, n * sizeof(float));
    return vld1q_f32(buf);
  }
  static float32x4_t load_w_tail(const float* p, size_t n) { return load_x_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return vfmaq_f32(acc, x, w); }
  static float reduce(Acc a) { return neon_reduce4(a); }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
};

}  // namespace
}  // namespace troupe
