// FP8 Ops for the avx2 path (see fp8/gemm_fp8_impl.h for the contract),
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
// Layout (prepacked at load): within every full 16-code chunk of a row on its
// K segment's chunk grid, 16-bit word i (i = 0..7) holds the codes of K i and
// 8 + i:
//
//   stored byte   2i      = code of K i
//   stored byte   2i + 1  = code of K 8 + i
//
// so one arithmetic shift right by 1 (after a shift left by 8 for the low
// byte) and a mask 0xbf80 give the fp16 lanes of K 0..7 and 8..15, in order,
// with no shuffle. A tail chunk (fewer than 16 codes) stays in K order and is
// widened through a table of the same scaled values.
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

// Stored position of the code of K index i (0..15) in a prepacked chunk.
constexpr size_t f16c_stored_index(size_t i) { return i < 8 ? 2 * i : 2 * (i - 8) + 1; }

struct Fp8F16cOps {
  using Bf16 = Avx2Ops;
  using XElem = uint16_t;
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
  static constexpr int kNB1 = 4;            // M = 1: 4 + 8 + 2 (+ a mask)
  static constexpr int kMBs = 2, kNBs = 2;  // small M: 4 + 4 + 2
  static constexpr size_t kSmallM = 3;      // larger M: fp32 strips (gemm_strips_avx2.h)
  static constexpr int kMB = 2, kNB = 2;
  static constexpr bool kReduce16 = false;
  static constexpr bool kPrepack = true;

  static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static Acc zero() { return _mm256_setzero_ps(); }
  static XVec load_x(const uint16_t* p) { return {Avx2Ops::load(p), Avx2Ops::load(p + 8), true}; }
  static XVec load_x_tail(const uint16_t* p, size_t n) {
    if (n <= 8) return {Avx2Ops::load_tail(p, n), _mm256_setzero_ps(), false};
    return {Avx2Ops::load(p), Avx2Ops::load_tail(p + 8, n - 8), true};
  }
  // 16 prepacked codes -> fp32 of value * 2^-8, K order.
  static WVec load_w(const uint8_t* p) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i mask = _mm_set1_epi16(static_cast<short>(0xbf80));
    const __m128i lo = _mm_and_si128(_mm_srai_epi16(_mm_slli_epi16(c, 8), 1), mask);
    const __m128i hi = _mm_and_si128(_mm_srai_epi16(c, 1), mask);
    return {_mm256_cvtph_ps(lo), _mm256_cvtph_ps(hi), true};
  }
  // A tail chunk (n < 16 codes, K order, not prepacked).
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

  template <typename F>
  static void for_each_full_chunk(size_t k0, size_t k1, F f) {
    for (size_t k = k0; k + kChunk <= k1; k += kChunk) f(k);
  }
  static void prepack_row(uint8_t* w, size_t K, size_t segments) {
    for (size_t s = 0; s < segments; ++s)
      for_each_full_chunk(K * s / segments, K * (s + 1) / segments, [&](size_t k) {
        uint8_t t[16];
        for (size_t i = 0; i < 16; ++i) t[f16c_stored_index(i)] = w[k + i];
        std::memcpy(w + k, t, 16);
      });
  }
  // The exact fp32 values of a prepacked row's K range [k0, k1) (one K segment), K order.
  static void widen_f32(const uint8_t* w, size_t k0, size_t k1, float* out) {
    const __m256 up = _mm256_set1_ps(256.0f);
    size_t k = k0;
    for (; k + kChunk <= k1; k += kChunk) {
      if ((k - k0) % 64 == 0) prefetch(w + k + 2048);  // 2 KiB ahead, as the bf16 strips
      const WVec v = load_w(w + k);
      _mm256_storeu_ps(out + (k - k0), _mm256_mul_ps(v.a, up));
      _mm256_storeu_ps(out + (k - k0) + 8, _mm256_mul_ps(v.b, up));
    }
    for (; k < k1; ++k) {
      const uint32_t b = static_cast<uint32_t>(kE4m3Bf16[w[k]]) << 16;
      std::memcpy(out + (k - k0), &b, sizeof b);
    }
  }
};

}  // namespace
}  // namespace troupe
