// bf16 matmul, AVX-512F path (no bf16 dot instruction): 16 bf16 of K per step,
// widened to fp32 by a 16-bit shift, then one fused multiply-add per lane.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "matmul_bf16_impl.h"

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

// 16 bf16 (in a ymm) -> 16 fp32.
inline __m512 widen_bf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

struct Avx512Ops {
  using Acc = __m512;
  using XVec = __m512;
  using WVec = __m512;
  static constexpr size_t kChunk = 16;
  static constexpr int kMB = 4, kNB = 4;

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
};

}  // namespace

void matmul_bf16_avx512(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K) {
  matmul_bf16_run<Avx512Ops>(w, xb, out, M, N, K);
}

}  // namespace troupe
