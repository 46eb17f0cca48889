// FP8 Ops for the avx2 path (see kernels/fp8/gemm_fp8_impl.h for the contract),
// converting e4m3 codes in registers through F16C, no table. Included only by
// src/kernels/gemm_fp8_avx2.cc (-mavx2 -mfma -mf16c), after gemm_ops_avx2.h.
//
// An e4m3 code placed at bits 14..7 of a 16-bit lane with its sign copied to
// bit 15 and bit 14 cleared is the fp16 of the code's value times 2^-8
// (exponent e + 8 - 8 of bias 15; e4m3 subnormals land on fp16 subnormals),
// and `vcvtph2ps` widens 8 of them to fp32 exactly. So the weights enter the
// AVX2 bf16 GEMM's instruction sequence (Avx2Ops: lane l accumulates
// fma(x, w, acc) over k = 8c + l, chunks in order, reduce_add_256) scaled by
// 2^-8, and reduce() multiplies the lane sum by 2^8. Every intermediate is the
// bf16 GEMM's times 2^-8 exactly: xq holds e4m3 values (multiples of 2^-9 below
// 2^9), so every nonzero product and partial sum has magnitude >= 2^-26 and far
// below 2^127 after scaling: no rounding ever leaves the normal range, and P_s
// is the bf16 GEMM of the codes' values bit for bit (test/native/fp8-gemm.test.ts).
//
// Per 16 codes of a row (K order, as stored): one sign-extending load to 16-bit
// lanes, a shift left by 7 and a mask 0xbf80 give the 16 fp16; they are stored
// to L1 and widened by two `vcvtph2ps` from memory (the register form costs a
// shuffle-port uop more per 8, and the ALU ports are what bounds the one-row
// GEMV). x arrives as fp32 (widened once per call by gemm_fp8_avx2), so per
// 16 weights the FMA ports run one shift, two conversions and two FMAs.
// A tail chunk (fewer than 16 codes) is widened through a table of the same
// scaled values.
// NaN codes (0x7f, 0xff) are not handled: they come out as +-480 (times 2^-8).
// Loading a model refuses them, and fp8Gemm hands arrays holding any to the
// table kernel (as for the VBMI kernel). A per-chunk check cost a fifth of the
// one-row GEMV's conversion throughput.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fp8/e4m3.h"

namespace troupe {
namespace {

// fp32 bits of every code's value times 2^-8 (NaN codes: the table's NaN). Every e4m3
// value is a normal bf16, so lowering the exponent field by 8 is exact.
constexpr std::array<uint32_t, 256> make_e4m3_f32_scaled() {
  std::array<uint32_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint32_t b = static_cast<uint32_t>(kE4m3Bf16[c]) << 16;
    if ((b & 0x7fffffffu) != 0 && (b & 0x7f800000u) != 0x7f800000u) b -= 8u << 23;
    t[c] = b;
  }
  return t;
}
inline constexpr std::array<uint32_t, 256> kE4m3F32Scaled = make_e4m3_f32_scaled();

// 8 fp16 at p -> fp32, from memory (no shuffle-port uop).
inline __m256 cvtph_from_memory(const __m128i* p) {
  __m256 r;
  __asm__("vcvtph2ps %1, %0" : "=x"(r) : "m"(*p));
  return r;
}

struct Fp8F16cOps {
  using Bf16 = Avx2Ops;
  using XElem = float;  // x widened to fp32 (exact: bf16 bits shifted)
  using WElem = uint8_t;
  using Acc = __m256;
  // K .. K+7 and K+8 .. K+15; `two`: whether b takes part (false only for a tail of <= 8).
  struct XVec {
    __m256 a, b;
    bool two;
  };
  using WVec = XVec;
  static constexpr size_t kChunk = 16;
  // Register blocks: accumulators + 2 per w row + 2 for x of the 16 ymm.
  static constexpr int kNB1 = 4;            // M = 1: 4 + 8 + 2
  static constexpr int kMBs = 2, kNBs = 2;  // small M: 4 + 4 + 2
  static constexpr size_t kSmallM = 2;      // larger M: bf16 panels (gemm_strips_avx2.h)
  static constexpr int kMB = 2, kNB = 2;
  static constexpr bool kReduce16 = false;
  static constexpr bool kPrepack = false;

  static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static Acc zero() { return _mm256_setzero_ps(); }
  static XVec load_x(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), true}; }
  static XVec load_x_tail(const float* p, size_t n) {
    alignas(32) float t[16] = {};
    std::memcpy(t, p, n * sizeof(float));
    return {_mm256_load_ps(t), _mm256_load_ps(t + 8), n > 8};
  }
  // 16 codes (K order) -> fp32 of value * 2^-8.
  static WVec load_w(const uint8_t* p) {
    alignas(32) __m128i h[2];
    const __m256i s = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i mask = _mm256_set1_epi16(static_cast<short>(0xbf80));
    _mm256_store_si256(reinterpret_cast<__m256i*>(h), _mm256_and_si256(_mm256_slli_epi16(s, 7), mask));
    return {cvtph_from_memory(h), cvtph_from_memory(h + 1), true};
  }
  // A tail chunk (n < 16 codes).
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    alignas(32) uint32_t t[16] = {};
    for (size_t i = 0; i < n; ++i) t[i] = kE4m3F32Scaled[p[i]];
    return {_mm256_load_ps(reinterpret_cast<const float*>(t)), _mm256_load_ps(reinterpret_cast<const float*>(t + 8)), n > 8};
  }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
    acc = _mm256_fmadd_ps(x.a, w.a, acc);
    return w.two ? _mm256_fmadd_ps(x.b, w.b, acc) : acc;
  }
  static float reduce(Acc a) { return reduce_add_256(a) * 256.0f; }  // exact: undoes the 2^-8
  static void reduce16(const Acc*, float*) {}
  static void prepack_row(uint8_t*, size_t, size_t) {}

  // The bf16 bits of a row's codes over [k0, k1) (one K segment): every e4m3 value is a
  // bf16 value, so value x 2^-8 times 2^8 in fp32, shifted right by 16, is exact.
  static void widen_bf16(const uint8_t* w, size_t k0, size_t k1, uint16_t* out) {
    const __m256 up = _mm256_set1_ps(256.0f);
    size_t k = k0;
    for (; k + kChunk <= k1; k += kChunk) {
      if ((k - k0) % 64 == 0) prefetch(w + k + 2048);  // 2 KiB ahead, as gemm_impl.h's streams
      const WVec v = load_w(w + k);
      const __m256i a = _mm256_srli_epi32(_mm256_castps_si256(_mm256_mul_ps(v.a, up)), 16);
      const __m256i b = _mm256_srli_epi32(_mm256_castps_si256(_mm256_mul_ps(v.b, up)), 16);
      // packus interleaves 128-bit lanes (a0-3 b0-3 a4-7 b4-7); the permute restores K order.
      const __m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (k - k0)), h);
    }
    for (; k < k1; ++k) out[k - k0] = kE4m3Bf16[w[k]];
  }
};

}  // namespace
}  // namespace troupe
