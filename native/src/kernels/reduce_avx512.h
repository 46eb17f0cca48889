// Horizontal sums of AVX-512 fp32 accumulators shared by the AVX-512 GEMM
// lane operations (gemm_ops_avx512.h, gemm_ops_avx512bf16.h). Included only by
// translation units compiled with AVX-512F, inside their anonymous namespace.
#pragma once

#include <immintrin.h>

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

// Reduces 16 accumulators at once, each by exactly reduce_add_512's tree
// (lanes l + l+8, then l + l+4, then l + l+2, then 0 + 1), with the pairs of
// vectors shuffled side by side so one add serves two, four, eight results.
inline void reduce16_512(const __m512* a, float* out) {
  // s8 of a pair: [a.lo256 + a.hi256 | b.lo256 + b.hi256]
  __m512 s8[8];
  for (int p = 0; p < 8; ++p) {
    const __m512 x = a[2 * p], y = a[2 * p + 1];
    s8[p] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
  }
  // s4 of four: 128-bit lanes [x0 x1 | y0 y1] + [x2 x3 | y2 y3] (lane = s8's quarter)
  __m512 s4[4];
  for (int q = 0; q < 4; ++q) {
    const __m512 x = s8[2 * q], y = s8[2 * q + 1];
    s4[q] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  }
  // s4[q] holds, per 128-bit lane L, the 4-lane partial of vector 4q + L.
  // s2: within each 128-bit lane [t0 t1 t2 t3] -> t0 + t2, t1 + t3, two vectors side by side.
  __m512 s2[2];
  for (int h = 0; h < 2; ++h) {
    const __m512 x = s4[2 * h], y = s4[2 * h + 1];
    s2[h] = _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x44), _mm512_shuffle_ps(x, y, 0xEE));
  }
  // s2[h], 128-bit lane L: [v(8h+L)_0, v(8h+L)_1, v(8h+4+L)_0, v(8h+4+L)_1]
  const __m512 x = s2[0], y = s2[1];
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x88), _mm512_shuffle_ps(x, y, 0xDD));
  // r, 128-bit lane L: [v(L), v(4+L), v(8+L), v(12+L)]
  alignas(64) float t[16];
  _mm512_store_ps(t, r);
  for (int L = 0; L < 4; ++L) {
    out[L] = t[4 * L];
    out[4 + L] = t[4 * L + 1];
    out[8 + L] = t[4 * L + 2];
    out[12 + L] = t[4 * L + 3];
  }
}

}  // namespace
}  // namespace troupe
