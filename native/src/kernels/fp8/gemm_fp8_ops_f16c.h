// FP8 Ops for the avx2 path (see kernels/fp8/gemm_fp8_impl.h for the contract),
// converting e4m3 codes in registers through F16C, no table. Included only by
// src/kernels/gemm_fp8_avx2.cc (-mavx2 -mfma -mf16c), after gemm_ops_avx2.h.
//
// An e4m3 code s eeee mmm laid out as the 16 bits  s 0 eeee mmm 0000000  is
// the fp16 of the code's value times 2^-8 (exponent e + 8 - 8 of bias 15;
// e4m3 subnormals land on fp16 subnormals), and `vcvtph2ps` widens 8 of them
// to fp32 exactly. So the weights enter the AVX2 bf16 GEMM's instruction
// sequence (Avx2Ops: lane l accumulates fma(x, w, acc) over k = 8c + l,
// chunks in order, reduce_add_256) scaled by 2^-8, and reduce() multiplies
// the lane sum by 2^8. Every intermediate is the bf16 GEMM's times 2^-8
// exactly: xq holds e4m3 values (multiples of 2^-9 below 2^9), so every
// nonzero product and partial sum has magnitude >= 2^-26 and far below 2^127
// after scaling: no rounding ever leaves the normal range, and P_s is the
// bf16 GEMM of the codes' values bit for bit (test/native/fp8-gemm.test.ts).
//
// Layout (recoded at load): within every full 32-code chunk of a row on its
// K segment's chunk grid, each code's bits are stored permuted, in place:
//
//   code    s e3 e2 e1 e0 m2 m1 m0      stored   s m0 e3 e2 e1 e0 m2 m1
//
// so the fp16 above is  (stored & 0xbf) << 8 | ((stored + stored) & 0x80):
// one byte add, two byte unpacks (each 16 lanes) and two masks per 32 codes,
// none of them on the FMA ports. The unpacks work inside 128-bit lanes, so
// the low unpack holds K 0..7 and 16..23, the high one K 8..15 and 24..31;
// both are stored to L1 and widened by four `vcvtph2ps` from memory (the
// register form costs a shuffle-port uop more per 8), in K order. Per 16
// weights the FMA ports run two conversions and two FMAs. A tail chunk
// (fewer than 32 codes) stays as stored and is laid out by scalar code. The
// rows of each block of four are then interleaved chunk by chunk
// (f16c_row_blocks.h, which also holds the kernels that read this layout).
// NaN codes (0x7f, 0xff) are not handled: they come out as +-480 (times 2^-8).
// Loading a model refuses them, and fp8Gemm hands arrays holding any to the
// table kernel (as for the VBMI kernel).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/fp8/e4m3.h"

namespace troupe {
namespace {

// The stored byte of code c in a full chunk.
constexpr uint8_t f16c_recode(uint8_t c) {
  return static_cast<uint8_t>((c & 0x80) | (c & 1) << 6 | ((c >> 3) & 15) << 2 | ((c >> 1) & 3));
}
// The fp16 bits of code c's value times 2^-8 (c as in K order, not recoded).
constexpr uint16_t e4m3_f16_scaled(uint8_t c) { return static_cast<uint16_t>((c & 0x80) << 8 | (c & 0x7f) << 7); }
// What load_w computes per lane from a stored byte r, for every code: the fp16 above.
constexpr bool f16c_layout_holds() {
  for (int c = 0; c < 256; ++c) {
    const uint8_t r = f16c_recode(static_cast<uint8_t>(c));
    const uint8_t sum = static_cast<uint8_t>(r + r);  // vpaddb
    if ((((r << 8) | sum) & 0xbf80) != e4m3_f16_scaled(static_cast<uint8_t>(c))) return false;
  }
  return true;
}
static_assert(f16c_layout_holds(), "the recoded byte's add, unpack and mask must give the scaled fp16");

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
  // x of K .. K+31 in 4 groups of 8; `groups` of them take part (fewer only in a tail,
  // where the weights' chunk is zero padded alike).
  struct XVec {
    __m256 v[4];
    int groups;
  };
  // The fp16 of a chunk's weights, slot q[g] holding K group kSlot[g] (the unpacks' order).
  struct WVec {
    __m128i q[4];
  };
  static constexpr int kSlot[4] = {0, 2, 1, 3};
  static constexpr size_t kChunk = 32;
  // Register blocks: accumulators + 4 for x + conversion temporaries of the 16 ymm.
  static constexpr int kNB1 = 4;            // M = 1: 4 + 4
  static constexpr int kMBs = 2, kNBs = 2;  // small M: 4 + 8
  static constexpr size_t kSmallM = 2;      // larger M: bf16 panels (gemm_strips_avx2.h)
  static constexpr int kMB = 2, kNB = 2;
  static constexpr bool kReduce16 = false;
  static constexpr bool kPrepack = true;

  static void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static Acc zero() { return _mm256_setzero_ps(); }
  static XVec load_x(const float* p) {
    return {{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24)}, 4};
  }
  static XVec load_x_tail(const float* p, size_t n) {
    alignas(32) float t[32] = {};
    std::memcpy(t, p, n * sizeof(float));
    return {{_mm256_load_ps(t), _mm256_load_ps(t + 8), _mm256_load_ps(t + 16), _mm256_load_ps(t + 24)},
            static_cast<int>((n + 7) / 8)};
  }
  // 32 recoded codes -> their fp16 (value * 2^-8) in the slots.
  static WVec load_w(const uint8_t* p) {
    WVec w;
    const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i d = _mm256_add_epi8(r, r);
    const __m256i mask = _mm256_set1_epi16(static_cast<short>(0xbf80));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&w.q[0]), _mm256_and_si256(_mm256_unpacklo_epi8(d, r), mask));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(&w.q[2]), _mm256_and_si256(_mm256_unpackhi_epi8(d, r), mask));
    return w;
  }
  // A tail chunk (n < 32 codes, as in K order), zero padded to whole groups.
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    alignas(16) uint16_t t[32] = {};
    for (size_t i = 0; i < n; ++i) t[8 * kSlot[i / 8] + i % 8] = e4m3_f16_scaled(p[i]);
    WVec w;
    std::memcpy(w.q, t, sizeof t);
    return w;
  }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g)
      if (g < x.groups) acc = _mm256_fmadd_ps(x.v[g], cvtph_from_memory(&w.q[kSlot[g]]), acc);
    return acc;
  }
  static float reduce(Acc a) { return reduce_add_256(a) * 256.0f; }  // exact: undoes the 2^-8
  static void reduce16(const Acc*, float*) {}

  // One full chunk (32 codes) recoded in place.
  static void prepack_chunk(uint8_t* c) {
    for (size_t i = 0; i < kChunk; ++i) c[i] = f16c_recode(c[i]);
  }

  // The bf16 bits of one full chunk's 32 codes (as stored), in K order: every e4m3 value is
  // a bf16 value, so value x 2^-8 times 2^8 in fp32, shifted right by 16, is exact.
  static void widen_chunk_bf16(const uint8_t* p, uint16_t* out) {
    const __m256 up = _mm256_set1_ps(256.0f);
    const WVec v = load_w(p);
#pragma GCC unroll 2
    for (int g = 0; g < 4; g += 2) {
      const __m256 a = _mm256_mul_ps(cvtph_from_memory(&v.q[kSlot[g]]), up);
      const __m256 b = _mm256_mul_ps(cvtph_from_memory(&v.q[kSlot[g + 1]]), up);
      const __m256i ha = _mm256_srli_epi32(_mm256_castps_si256(a), 16);
      const __m256i hb = _mm256_srli_epi32(_mm256_castps_si256(b), 16);
      // packus interleaves 128-bit lanes (a0-3 b0-3 a4-7 b4-7); the permute restores K order.
      const __m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(ha, hb), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * g), h);
    }
  }
};

}  // namespace
}  // namespace troupe
