// FP8 e4m3fn element conversions shared by the FP8 kernels (baseline code,
// portable C++, so every ISA quantizes to the same bits).
//
//   e4m3fn  s eeee mmm  bias 7, no infinities, 0x7f / 0xff NaN, max 448,
//           subnormals m * 2^-9
//   bf16    s eeeeeeee mmmmmmm  (the top half of an fp32)
//
// Every e4m3 value is exactly a bf16 value: a normal e4m3 is bf16 with
// exponent e + 120 and mantissa m << 4; a subnormal m * 2^-9 is a normal bf16
// (bf16 has fp32's exponent range). So "quantize to e4m3, then compute in
// bf16" loses nothing beyond the e4m3 rounding itself.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace troupe {
// Private to each translation unit (as the kernels' headers): ISA TUs compile
// these with their own flags, so no copy may be shared through the linker.
namespace {

constexpr float kE4m3Max = 448.0f;
// FBGEMM's smallest dynamic activation scale, 1 / (448 * 512).
constexpr float kFp8MinScale = 1.0f / (448.0f * 512.0f);

// bf16 bits of the e4m3 code c (NaN codes give a quiet bf16 NaN).
constexpr uint16_t e4m3_to_bf16_bits(uint8_t c) {
  const uint16_t sign = static_cast<uint16_t>((c & 0x80) << 8);
  const uint8_t mag = c & 0x7f;
  if (mag == 0x7f) return static_cast<uint16_t>(sign | 0x7fc0);
  const uint16_t e = mag >> 3, m = mag & 7;
  if (e != 0) return static_cast<uint16_t>(sign | ((e + 120) << 7) | (m << 4));
  if (m == 0) return sign;
  // m * 2^-9 = 2^(p - 9) * (m / 2^p), p = the top set bit of m.
  const uint16_t p = m >= 4 ? 2 : m >= 2 ? 1 : 0;
  return static_cast<uint16_t>(sign | ((p - 9 + 127) << 7) | ((m - (1 << p)) << (7 - p)));
}

// f(c) for every 8-bit code c.
template <class F>
constexpr std::array<uint16_t, 256> code_table(F f) {
  std::array<uint16_t, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = f(static_cast<uint8_t>(c));
  return t;
}
// bf16 bits of every e4m3 code.
inline constexpr std::array<uint16_t, 256> kE4m3Bf16 = code_table(e4m3_to_bf16_bits);

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// v rounded to the nearest e4m3 value (ties to even), saturated to +-448, as
// fp32. NaN stays NaN.
inline float e4m3_round(float v) {
  if (std::isnan(v)) return v;
  const uint32_t sign = float_bits(v) & 0x80000000u;
  float a = std::fabs(v);
  if (a > kE4m3Max) a = kE4m3Max;
  if (a >= 0.015625f) {  // 2^-6, the smallest normal: keep 3 mantissa bits, ties to even
    uint32_t u = float_bits(a);
    u = (u + 0x7ffffu + ((u >> 20) & 1u)) & 0xfff00000u;
    a = bits_float(u);
  } else {  // subnormal grid m * 2^-9 (a * 512 is exact); nearbyint ties to even
    a = std::nearbyint(a * 512.0f) * (1.0f / 512.0f);
  }
  return bits_float(float_bits(a) | sign);
}

// The bf16 bits of e4m3_round(v) (the top half of its fp32 bits), with integer selects
// only, so the quantizer's loop vectorizes (e4m3.cc is built with -fno-trapping-math, which
// lets GCC compute both sides of a select; it changes no result). Equal to e4m3_round for
// every one of the 2^32 fp32 inputs, NaNs included.
inline uint16_t e4m3_round_bf16_bits(float v) {
  const uint32_t u = float_bits(v);
  const uint32_t ua = u & 0x7fffffffu;
  constexpr uint32_t kMaxBits = 0x43e00000u, kMinNormalBits = 0x3c800000u;  // 448, 2^-6
  const uint32_t c = ua > kMaxBits ? kMaxBits : ua;  // saturated (a NaN is restored below)
  const uint32_t normal = (c + 0x7ffffu + ((c >> 20) & 1u)) & 0xfff00000u;
  // subnormal grid m * 2^-9: c * 512 < 8, rounded to an integer (ties to even) by adding 2^23
  const float sub = ((bits_float(c) * 512.0f + 0x1p23f) - 0x1p23f) * (1.0f / 512.0f);
  const uint32_t r = (c >= kMinNormalBits ? normal : float_bits(sub)) | (u & 0x80000000u);
  return static_cast<uint16_t>((ua > 0x7f800000u ? u : r) >> 16);
}

// The e4m3 code of e4m3_round(v).
inline uint8_t e4m3_encode(float v) {
  if (std::isnan(v)) return 0x7f;
  const float r = e4m3_round(v);
  const uint32_t u = float_bits(r);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80);
  const float a = std::fabs(r);
  if (a < 0.015625f) return static_cast<uint8_t>(sign | static_cast<uint8_t>(a * 512.0f));
  const uint32_t ua = float_bits(a);
  const uint32_t e = (ua >> 23) - 127 + 7, m = (ua >> 20) & 7;
  return static_cast<uint8_t>(sign | (e << 3) | m);
}

// e5m2 (s eeeee mm, bias 15, IEEE-like: inf 0x7c, NaN 0x7d..0x7f, max 57344,
// subnormals m * 2^-16): the top byte of an fp16. Used by the fp8_e5m2 KV cache.
constexpr uint16_t e5m2_to_bf16_bits(uint8_t c) {
  const uint16_t sign = static_cast<uint16_t>((c & 0x80) << 8);
  const uint16_t e = (c >> 2) & 31, m = c & 3;
  if (e == 31) return static_cast<uint16_t>(sign | (m == 0 ? 0x7f80 : 0x7fc0));
  if (e != 0) return static_cast<uint16_t>(sign | ((e + 112) << 7) | (m << 5));
  if (m == 0) return sign;
  const uint16_t p = m >= 2 ? 1 : 0;  // m * 2^-16 = 2^(p - 16) * (m / 2^p)
  return static_cast<uint16_t>(sign | ((p - 16 + 127) << 7) | ((m - (1 << p)) << (7 - p)));
}

// bf16 bits of every e5m2 code.
inline constexpr std::array<uint16_t, 256> kE5m2Bf16 = code_table(e5m2_to_bf16_bits);

// The e5m2 code nearest v (ties to even), finite values saturated to +-57344; NaN -> 0x7f.
inline uint8_t e5m2_encode(float v) {
  if (std::isnan(v)) return 0x7f;
  const uint8_t sign = static_cast<uint8_t>((float_bits(v) >> 24) & 0x80);
  float a = std::fabs(v);
  if (a > 57344.0f) a = 57344.0f;
  if (a < 6.103515625e-05f) {  // below 2^-14: subnormal grid m * 2^-16
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::nearbyint(a * 65536.0f)));  // 4 = 2^-14, a normal code
  }
  uint32_t u = float_bits(a);
  u = (u + 0xfffffu + ((u >> 21) & 1u)) & 0xffe00000u;
  const uint32_t e = (u >> 23) - 127 + 15, m = (u >> 21) & 3;
  return static_cast<uint8_t>(sign | (e << 2) | m);
}

// FBGEMM's dynamic per-token activation scale: max(min(absmax, ub) / 448, 1 / (448 * 512)).
inline float fp8_activation_scale(float absmax, float ub) {
  const float clamped = absmax < ub ? absmax : ub;
  const float s = clamped / kE4m3Max;
  return s > kFp8MinScale ? s : kFp8MinScale;
}

}  // namespace

// Rows [r0, r1) of x [*, K] (row stride K) quantized for an FP8 linear:
//   static_scale > 0: s = static_scale for every row;
//   else s[r] = fp8_activation_scale(max |x[r, :]|, ub)   (per token: batch invariant)
//   xq[r, k] = bf16 bits of e4m3_round(x[r, k] / s[r]),  xs[r] = s[r]
// The model runs ModelKernels::quantize_e4m3, each ISA's vectorized form of these bits.
void quantize_rows_e4m3(const float* x, uint16_t* xq, float* xs, size_t r0, size_t r1, size_t K,
                        float ub, float static_scale);

// Per-output-channel weight quantization (FBGEMM's): scale[r] = max |w[r, :]| / 448
// (1 for an all-zero row), codes[r, k] = e4m3_encode(w[r, k] / scale[r]).
// w is bf16 bits (bf16 = true) or fp32. Rows [r0, r1) of [*, K].
void quantize_weight_rows_e4m3(const void* w, bool bf16, uint8_t* codes, float* scales, size_t r0,
                               size_t r1, size_t K);

}  // namespace troupe
