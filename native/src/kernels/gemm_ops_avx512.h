// GEMM lane operations for the AVX-512F path (no bf16 dot instruction); see
// gemm_impl.h for the Ops contract. Included only by translation units
// compiled with -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c, inside
// their anonymous namespace.
//
// Bf16 weights: 16 bf16 of K per step, widened to fp32 by a 16-bit shift,
// then one fused multiply-add per lane. F32 weights: the same on fp32 loads.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/reduce_avx512.h"  // reduce_add_512, reduce16_512

namespace troupe {
namespace {

// 16 bf16 (in a ymm) -> 16 fp32.
inline __m512 widen_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

struct Avx512Ops {
  using Elem = uint16_t;  // bf16 bits
  using Acc = __m512;
  using XVec = __m512;
  using WVec = __m512;
  static constexpr size_t kChunk = 16;
  // Register blocks (gemm_impl.h): accumulators + w + x of the 32 zmm.
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 8, kNBs = 3;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 4, kNB = 4;
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static Acc zero() { return _mm512_setzero_ps(); }
  static __m512 load(const uint16_t* p) {
    return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static __m512 load_tail(const uint16_t* p, size_t n) {
    return widen_bf16(_mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1u), p));
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return _mm512_fmadd_ps(x, w, acc); }
  static float reduce(Acc a) { return reduce_add_512(a); }
  static constexpr bool kReduce16 = true;
  static void reduce16(const Acc* a, float* out) { reduce16_512(a, out); }
};

struct Avx512F32Ops {
  using Elem = float;
  using Acc = __m512;
  using XVec = __m512;
  using WVec = __m512;
  static constexpr size_t kChunk = 16;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 8, kNBs = 3;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 4, kNB = 4;
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static Acc zero() { return _mm512_setzero_ps(); }
  static __m512 load_x(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_w(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_x_tail(const float* p, size_t n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  static __m512 load_w_tail(const float* p, size_t n) { return load_x_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return _mm512_fmadd_ps(x, w, acc); }
  static float reduce(Acc a) { return reduce_add_512(a); }
  static constexpr bool kReduce16 = true;
  static void reduce16(const Acc* a, float* out) { reduce16_512(a, out); }
};

}  // namespace
}  // namespace troupe
