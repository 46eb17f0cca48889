// FP8 Ops for the ARM64 paths: gemm_fp8_ops_table.h's, except that a chunk of
// e4m3 codes is widened in registers (8 codes per conversion), then fed to the
// bf16 Ops' dot exactly as the bf16 GEMM's weights are, so each P_s equals the
// bf16 GEMM of the codes' values bit for bit (test/native/fp8-gemm.test.ts).
//
// e4m3 (s eeee mmm, bias 7) -> its value, 8 codes in 16-bit lanes:
//   b = sxtl(code) << 4 & 0x87f0 = s << 15 | eeeemmm << 4
//     the bf16 bits of value * 2^-120: bf16 has 4 more exponent bits and bias
//     127 = 7 + 120, and an e4m3 subnormal (e = 0) is a bf16 subnormal of the
//     same scale, so normal, subnormal and zero codes all land exactly;
//   NaN (eeeemmm = 0x7f): b is patched to s << 15 | 0x7fc0 (the quiet NaN of
//     kernels/fp8/e4m3.h; a NaN stays the same NaN when scaled);
//   fp32 = widen(b) * 2^120: exact (a subnormal operand too: FPCR.FZ is 0 on
//     Linux and macOS), which the neon path feeds to FMLA; the neon-bf16 path
//     keeps the top halves (UZP2), the bf16 bits of the value.
// About 13 ASIMD instructions per 8 codes. Codes stay in K order (no prepack);
// prefill widens rows through the table (widen_row), the same bits.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fp8/gemm_fp8_ops_table.h"

namespace troupe {
namespace {

struct NeonFp8Widened {
  float32x4_t lo, hi;  // the values of codes 0..3 and 4..7
};

inline NeonFp8Widened neon_e4m3x8_widen(uint8x8_t c) {
  const uint16x8_t sx = vreinterpretq_u16_s16(vmovl_s8(vreinterpret_s8_u8(c)));
  uint16x8_t b = vandq_u16(vshlq_n_u16(sx, 4), vdupq_n_u16(0x87f0));
  const uint16x8_t nan = vceqq_u16(vshlq_n_u16(b, 1), vdupq_n_u16(0x0fe0));
  b = veorq_u16(b, vandq_u16(nan, vdupq_n_u16(0x07f0 ^ 0x7fc0)));
  const float32x4_t k2p120 = vdupq_n_f32(0x1p120f);
  return {vmulq_f32(vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(b), 16)), k2p120),
          vmulq_f32(vreinterpretq_f32_u32(vshll_high_n_u16(b, 16)), k2p120)};
}

template <class B>
struct Fp8NeonOps : Fp8TableOps<B> {
  using WVec = typename B::WVec;
  static constexpr size_t kChunk = B::kChunk;
  static_assert(kChunk <= 8, "one conversion widens 8 codes");
  static WVec load_w(const uint8_t* p) {
    uint64_t u = 0;
    std::memcpy(&u, p, kChunk);  // a fixed-size copy: one load
    const NeonFp8Widened v = neon_e4m3x8_widen(vcreate_u8(u));
    return B::w_from_f32(v.lo, v.hi);
  }
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    uint64_t u = 0;
    std::memcpy(&u, p, n);
    const NeonFp8Widened v = neon_e4m3x8_widen(vcreate_u8(u));
    return B::w_from_f32(v.lo, v.hi);
  }
};

}  // namespace
}  // namespace troupe
