// GEMM lane operations for the AVX-512 BF16 path (see gemm_impl.h for the Ops
// contract). Included only by translation units compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma, inside their
// anonymous namespace (each TU keeps a private copy).
//
// Bf16 weights: vdpbf16ps consumes 32 bf16 of K per instruction (lane l
// accumulates the pair k = 2l, 2l+1 of each 32-chunk). It treats bf16 denormal
// inputs as zero and flushes denormal results (DAZ/FTZ are implied).
// F32 weights: 16 fp32 of K per step, one fused multiply-add per lane.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace troupe {
namespace {

inline float reduce_add_512(__m512 a) {
  const __m256 lo = _mm512_castps512_ps256(a);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

struct Avx512Bf16Ops {
  using Elem = uint16_t;  // bf16 bits
  using Acc = __m512;
  using XVec = __m512i;  // 32 bf16
  using WVec = __m512i;
  static constexpr size_t kChunk = 32;
  static constexpr int kMB = 4, kNB = 4;  // 16 accumulators + 4 w + 1 x of 32 zmm

  static Acc zero() { return _mm512_setzero_ps(); }
  static __m512i load(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static __m512i load_tail(const uint16_t* p, size_t n) {
    return _mm512_maskz_loadu_epi16(static_cast<__mmask32>((1u << n) - 1u), p);
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)x, (__m512bh)w);  // bit casts
  }
  static float reduce(Acc a) { return reduce_add_512(a); }
};

struct Avx512F32Ops {
  using Elem = float;
  using Acc = __m512;
  using XVec = __m512;
  using WVec = __m512;
  static constexpr size_t kChunk = 16;
  static constexpr int kMB = 4, kNB = 4;

  static Acc zero() { return _mm512_setzero_ps(); }
  static __m512 load_x(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_w(const float* p) { return _mm512_loadu_ps(p); }
  static __m512 load_x_tail(const float* p, size_t n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  static __m512 load_w_tail(const float* p, size_t n) { return load_x_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return _mm512_fmadd_ps(x, w, acc); }
  static float reduce(Acc a) { return reduce_add_512(a); }
};

}  // namespace
}  // namespace troupe
