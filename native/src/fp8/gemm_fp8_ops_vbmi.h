// FP8 Ops for the avx512bf16 path on CPUs with AVX512-VBMI (see
// fp8/gemm_fp8_impl.h for the contract). Included only by
// src/kernels/gemm_fp8_avx512bf16.cc, compiled with the avx512bf16 flags plus
// -mavx512vbmi, after gemm_ops_avx512bf16.h.
//
// One chunk is 64 weights (one 64-byte load). e4m3 -> bf16 in registers:
//   hi = LUT_hi[c & 0x7f] | (c & 0x80)    vpermi2b over two 64-byte tables, then one vpternlogd
//   lo = LUT_lo[c & 0x7f]                 vpermi2b
//   words 0..31 / 32..63 = interleave(lo, hi)   two vpermt2b with fixed indices
// (the tables hold the high and low bytes of kE4m3Bf16's positive half, so
// the result is the table's bits exactly), then two vdpbf16ps: the same two
// instructions, on the same operands, as two 32-wide chunks of the bf16 GEMM.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "fp8/e4m3.h"

namespace troupe {
namespace {

struct Fp8VbmiTables {
  __m512i hi0, hi1, lo0, lo1;  // bytes of kE4m3Bf16[0..63] / [64..127]
  __m512i inter0, inter1;      // vpermt2b indices: words 0..31 and 32..63 from (lo, hi)
  __m512i sign;                // 0x80 in every byte
};

inline Fp8VbmiTables make_fp8_vbmi_tables() {
  alignas(64) uint8_t hi[128], lo[128], i0[64], i1[64];
  for (int c = 0; c < 128; ++c) {
    hi[c] = static_cast<uint8_t>(kE4m3Bf16[c] >> 8);
    lo[c] = static_cast<uint8_t>(kE4m3Bf16[c] & 0xff);
  }
  for (int i = 0; i < 32; ++i) {
    i0[2 * i] = static_cast<uint8_t>(i), i0[2 * i + 1] = static_cast<uint8_t>(64 + i);
    i1[2 * i] = static_cast<uint8_t>(32 + i), i1[2 * i + 1] = static_cast<uint8_t>(96 + i);
  }
  Fp8VbmiTables t;
  t.hi0 = _mm512_load_si512(hi), t.hi1 = _mm512_load_si512(hi + 64);
  t.lo0 = _mm512_load_si512(lo), t.lo1 = _mm512_load_si512(lo + 64);
  t.inter0 = _mm512_load_si512(i0), t.inter1 = _mm512_load_si512(i1);
  t.sign = _mm512_set1_epi8(static_cast<char>(0x80));
  return t;
}

struct Fp8VbmiOps {
  using XElem = uint16_t;
  using WElem = uint8_t;
  using Acc = __m512;
  struct XVec {
    __m512i a, b;  // bf16 of k .. k+31, k+32 .. k+63
  };
  using WVec = XVec;
  static constexpr size_t kChunk = 64;
  // Register blocks: accumulators + 2 per w row + 2 for x + 7 constants of the 32 zmm.
  static constexpr int kNB1 = 4;            // M = 1: 4 + 8 + 2 + 7
  static constexpr int kMBs = 8, kNBs = 2;  // M <= kSmallM: 16 + 4 + 2 + 7
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 4, kNB = 3;    // larger M: 12 + 6 + 2 + 7
  static constexpr bool kReduce16 = true;

  static const Fp8VbmiTables& tables() {
    static const Fp8VbmiTables t = make_fp8_vbmi_tables();
    return t;
  }
  static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static Acc zero() { return _mm512_setzero_ps(); }
  static XVec load_x(const uint16_t* p) { return {_mm512_loadu_si512(p), _mm512_loadu_si512(p + 32)}; }
  static XVec load_x_tail(const uint16_t* p, size_t n) {
    const size_t na = n < 32 ? n : 32, nb = n - na;
    const __mmask32 ma = na == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << na) - 1u);
    const __mmask32 mb = static_cast<__mmask32>((1u << nb) - 1u);  // nb < 32
    return {_mm512_maskz_loadu_epi16(ma, p), _mm512_maskz_loadu_epi16(mb, p + 32)};
  }
  static WVec widen(__m512i c) {
    const Fp8VbmiTables& t = tables();
    __m512i hi = _mm512_permutex2var_epi8(t.hi0, c, t.hi1);
    hi = _mm512_ternarylogic_epi32(hi, c, t.sign, 0xF8);  // hi | (c & 0x80)
    const __m512i lo = _mm512_permutex2var_epi8(t.lo0, c, t.lo1);
    return {_mm512_permutex2var_epi8(lo, t.inter0, hi), _mm512_permutex2var_epi8(lo, t.inter1, hi)};
  }
  static WVec load_w(const uint8_t* p) { return widen(_mm512_loadu_si512(p)); }
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    return widen(_mm512_maskz_loadu_epi8(static_cast<__mmask64>((uint64_t{1} << n) - 1u), p));  // n < 64
  }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
    acc = _mm512_dpbf16_ps(acc, (__m512bh)x.a, (__m512bh)w.a);
    return _mm512_dpbf16_ps(acc, (__m512bh)x.b, (__m512bh)w.b);
  }
  static float reduce(Acc a) { return reduce_add_512(a); }
  static void reduce16(const Acc* a, float* out) { reduce16_512(a, out); }
};

}  // namespace
}  // namespace troupe
