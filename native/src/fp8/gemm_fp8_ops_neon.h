// FP8 Ops for the ARM64 paths: gemm_fp8_ops_table.h's, except that a chunk of
// e4m3 codes is widened to bf16 bits in registers (8 codes per conversion,
// byte lanes), then fed to the bf16 Ops' dot exactly as the bf16 GEMM is, so
// each P_s equals the bf16 GEMM of the codes' values bit for bit.
//
// e4m3 (s eeee mmm, bias 7) -> bf16 (s eeeeeeee mmmmmmm, bias 127), per code,
// with mag = code & 0x7f:
//   mag >= 8 (normal)      hi = (mag >> 4) + 0x3c, lo = (mag << 4) & 0xf0
//                          (exponent e + 120, mantissa m << 4)
//   mag < 8 (zero, subnormal m * 2^-9)   hi, lo from an 8-entry byte table
//   mag == 0x7f (NaN)      hi = 0x7f, lo = 0xc0 (quiet NaN, as fp8/e4m3.h)
//   sign                   bit 7 of the code -> bit 7 of hi
// Prepacking is not needed (codes stay in K order); prefill widens rows with
// the table (widen_row), the same bits.
#pragma once

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fp8/gemm_fp8_ops_table.h"

namespace troupe {
namespace {

// bf16 bits of 8 e4m3 codes, lane i = code i.
inline uint16x8_t neon_e4m3x8_to_bf16(uint8x8_t c) {
  // Subnormal bf16 bytes for mag 0..7: 0, 2^-9, 2^-8, 1.5 2^-8, 2^-7, 1.25 2^-7, 1.5 2^-7, 1.75 2^-7.
  static constexpr uint8_t kSubHi[8] = {0x00, 0x3b, 0x3b, 0x3b, 0x3c, 0x3c, 0x3c, 0x3c};
  static constexpr uint8_t kSubLo[8] = {0x00, 0x00, 0x80, 0xc0, 0x00, 0x20, 0x40, 0x60};
  const uint8x8_t mag = vand_u8(c, vdup_n_u8(0x7f));
  uint8x8_t hi = vadd_u8(vshr_n_u8(mag, 4), vdup_n_u8(0x3c));
  uint8x8_t lo = vshl_n_u8(mag, 4);
  const uint8x8_t sub = vclt_u8(mag, vdup_n_u8(8));
  hi = vbsl_u8(sub, vtbl1_u8(vld1_u8(kSubHi), mag), hi);
  lo = vbsl_u8(sub, vtbl1_u8(vld1_u8(kSubLo), mag), lo);
  const uint8x8_t nan = vceq_u8(mag, vdup_n_u8(0x7f));
  hi = vbsl_u8(nan, vdup_n_u8(0x7f), hi);
  lo = vbsl_u8(nan, vdup_n_u8(0xc0), lo);
  hi = vorr_u8(hi, vand_u8(c, vdup_n_u8(0x80)));
  // Interleave (lo, hi) bytes into little-endian u16 lanes.
  return vreinterpretq_u16_u8(vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi)));
}

template <class B>
struct Fp8NeonOps : Fp8TableOps<B> {
  using WVec = typename B::WVec;
  static constexpr size_t kChunk = B::kChunk;
  static_assert(kChunk <= 8, "one conversion widens 8 codes");
  static WVec load_w(const uint8_t* p) {
    uint8_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, kChunk);  // a fixed-size copy: one load
    return B::w_from_bits(neon_e4m3x8_to_bf16(vld1_u8(buf)));
  }
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    uint8_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, n);
    return B::w_from_bits(neon_e4m3x8_to_bf16(vld1_u8(buf)));
  }
};

}  // namespace
}  // namespace troupe
