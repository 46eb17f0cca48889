// FP8 Ops for the avx512bf16 path on CPUs with AVX512-VBMI (see
// kernels/fp8/gemm_fp8_impl.h for the contract). Included only by
// src/kernels/gemm_fp8_avx512bf16.cc, compiled with the avx512bf16 flags plus
// -mavx512vbmi, after gemm_ops_avx512bf16.h.
//
// One chunk is 64 weights (one 64-byte load), widened to two vectors of 32
// bf16 and fed to two vdpbf16ps: the same two instructions, on the same
// operands, as two 32-wide chunks of the bf16 GEMM.
//
// Layout (prepacked at load): within every full 64-code chunk of a row on
// its K segment's chunk grid, the codes are stored so that 128-bit lane L
// holds K = 8L .. 8L+7, then K = 32+8L .. 32+8L+7:
//
//   stored byte   16L + i      = code of K 8L + i        (L = 0..3, i = 0..7)
//   stored byte   16L + 8 + i  = code of K 32 + 8L + i
//
// so the in-lane byte unpacks put K 0..31 in the first vector and 32..63 in
// the second, in order. A tail chunk (fewer than 64 codes) stays in K order.
// e4m3 -> bf16 bytes for normal codes and zero, one vpermb each:
//   hi = T_hi[(c >> 3) & 63]   sign | (e + 120) >> 1   (index bit 5 is the neighbour
//                                                       byte's bit: both halves alike)
//   lo = T_lo[c & 63]          (e & 1) << 7 | m << 4   (120 is even)
// Subnormal codes (e = 0, m > 0: m * 2^-9, whose exponent depends on m) are
// rare in weights: a chunk holding any code with e = 0 also overwrites those
// bytes from two 8-entry tables indexed by m, then ORs the sign in (a branch
// rarely taken, inline: no call, so the accumulators stay in registers).
// So a 64-weight chunk costs a shift, two vpermb, a test and two unpacks.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fp8/e4m3.h"

namespace troupe {
namespace {

// The byte tables (constant data: no initialization guard in the loop).
struct alignas(64) Fp8VbmiTables {
  uint8_t hi[64], lo[64];        // T_hi, T_lo above
  uint8_t sub_hi[64], sub_lo[64];  // e = 0 codes, indexed by c & 63 = m: bytes of m * 2^-9 (no sign)
  uint8_t e_mask[64];            // 0x78: the exponent bits
  uint8_t sign[64];              // 0x80
};

constexpr Fp8VbmiTables make_fp8_vbmi_tables() {
  Fp8VbmiTables t{};
  for (int i = 0; i < 64; ++i) {
    const int e = i & 15, s = (i >> 4) & 1;
    t.hi[i] = static_cast<uint8_t>((s << 7) | (e == 0 ? 0 : (e + 120) >> 1));
    const int m = i & 7, e0 = (i >> 3) & 1;
    t.lo[i] = static_cast<uint8_t>((e0 << 7) | (m << 4));
    const uint16_t sub = i < 8 ? kE4m3Bf16[i] : 0;
    t.sub_hi[i] = static_cast<uint8_t>(sub >> 8);
    t.sub_lo[i] = static_cast<uint8_t>(sub & 0xff);
    t.e_mask[i] = 0x78;
    t.sign[i] = 0x80;
  }
  return t;
}
inline constexpr Fp8VbmiTables kFp8VbmiTables = make_fp8_vbmi_tables();

// Stored position of the code of K index i (0..63) in a prepacked chunk.
constexpr size_t vbmi_stored_index(size_t i) {
  return i < 32 ? 16 * (i / 8) + i % 8 : 16 * ((i - 32) / 8) + 8 + (i - 32) % 8;
}

struct Fp8VbmiOps {
  using Bf16 = Avx512Bf16Ops;
  using XElem = uint16_t;
  using WElem = uint8_t;
  using Acc = __m512;
  struct XVec {
    __m512i a, b;  // bf16 of k .. k+31, k+32 .. k+63
  };
  using WVec = XVec;
  static constexpr size_t kChunk = 64;
  // Register blocks: accumulators + 2 per w row + 2 for x + 3 constants of the 32 zmm.
  static constexpr int kNB1 = 4;            // M = 1: 4 + 8 + 2 + 3 (6 and 8 measured no better)
  static constexpr int kMBs = 8, kNBs = 2;  // M <= kSmallM: 16 + 4 + 2 + 3
  static constexpr size_t kSmallM = 16;     // larger M: bf16 strips (gemm_fp8_impl.h; from 17 on measured faster)
  static constexpr int kMB = 8, kNB = 2;
  static constexpr bool kReduce16 = true;
  static constexpr bool kPrepack = true;

  static __m512i table(const uint8_t* t) { return _mm512_load_si512(t); }
  static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static Acc zero() { return _mm512_setzero_ps(); }
  static XVec load_x(const uint16_t* p) { return {_mm512_loadu_si512(p), _mm512_loadu_si512(p + 32)}; }
  static XVec load_x_tail(const uint16_t* p, size_t n) {
    const size_t na = n < 32 ? n : 32, nb = n - na;
    const __mmask32 ma = na == 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << na) - 1u);
    const __mmask32 mb = static_cast<__mmask32>((1u << nb) - 1u);  // nb < 32
    return {_mm512_maskz_loadu_epi16(ma, p), _mm512_maskz_loadu_epi16(mb, p + 32)};
  }
  static WVec load_w(const uint8_t* p) {
    const Fp8VbmiTables& t = kFp8VbmiTables;
    const __m512i c = _mm512_loadu_si512(p);
    __m512i hi = _mm512_permutexvar_epi8(_mm512_srli_epi16(c, 3), table(t.hi));
    __m512i lo = _mm512_permutexvar_epi8(c, table(t.lo));
    const __mmask64 e0 = _mm512_testn_epi8_mask(c, table(t.e_mask));
    if (__builtin_expect(e0 != 0, 0)) {  // zeros (already right) and subnormals
      hi = _mm512_mask_permutexvar_epi8(hi, e0, c, table(t.sub_hi));
      lo = _mm512_mask_permutexvar_epi8(lo, e0, c, table(t.sub_lo));
      hi = _mm512_ternarylogic_epi32(hi, c, table(t.sign), 0xF8);  // hi | (c & 0x80)
    }
    return {_mm512_unpacklo_epi8(lo, hi), _mm512_unpackhi_epi8(lo, hi)};
  }
  // A tail chunk (n < 64 codes, K order, not prepacked).
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    alignas(64) uint16_t t[64] = {};
    for (size_t i = 0; i < n; ++i) t[i] = kE4m3Bf16[p[i]];
    return {_mm512_load_si512(t), _mm512_load_si512(t + 32)};
  }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
    acc = _mm512_dpbf16_ps(acc, (__m512bh)x.a, (__m512bh)w.a);
    return _mm512_dpbf16_ps(acc, (__m512bh)x.b, (__m512bh)w.b);
  }
  static float reduce(Acc a) { return reduce_add_512(a); }
  static void reduce16(const Acc* a, float* out) { reduce16_512(a, out); }

  // One full chunk (64 codes, K order) into the layout above.
  static void prepack_chunk(uint8_t* c) {
    uint8_t t[64];
    for (size_t i = 0; i < 64; ++i) t[vbmi_stored_index(i)] = c[i];
    std::memcpy(c, t, 64);
  }
  static void widen_row(const uint8_t* w, size_t K, size_t segments, uint16_t* out) {
    for (size_t s = 0; s < segments; ++s) {
      const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments;
      size_t k = k0;
      for (; k + kChunk <= k1; k += kChunk) {  // full chunks: prepacked, widened in registers
        const WVec v = load_w(w + k);
        _mm512_storeu_si512(out + k, v.a);
        _mm512_storeu_si512(out + k + 32, v.b);
      }
      for (; k < k1; ++k) out[k] = kE4m3Bf16[w[k]];  // the tail, in K order
    }
  }
};

}  // namespace
}  // namespace troupe
