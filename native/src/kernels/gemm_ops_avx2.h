// GEMM lane operations for the AVX2 path; see gemm_impl.h for the Ops
// contract. Included only by translation units compiled with -mavx2 -mfma
// -mf16c, inside their anonymous namespace.
//
// Bf16 weights: 8 bf16 of K per step, widened to fp32 by a 16-bit shift, then
// one fused multiply-add per lane. F32 weights: the same on fp32 loads.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace troupe {
namespace {

// 8 bf16 (in an xmm) -> 8 fp32.
inline __m256 widen_bf16(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float reduce_add_256(__m256 a) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

struct Avx2Ops {
  using Elem = uint16_t;  // bf16 bits
  using Acc = __m256;
  using XVec = __m256;
  using WVec = __m256;
  static constexpr size_t kChunk = 8;
  // Register blocks (gemm_impl.h): accumulators + w + x of the 16 ymm.
  static constexpr int kNB1 = 4;                // M = 1: 4 + 4 + 1
  static constexpr int kMBs = 2, kNBs = 4;      // small M: 8 + 4 + 1
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 2, kNB = 4;
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static Acc zero() { return _mm256_setzero_ps(); }
  static __m256 load(const uint16_t* p) {
    return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static __m256 load_tail(const uint16_t* p, size_t n) {  // AVX2 has no 16-bit masked load
    uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, n * sizeof(uint16_t));
    return load(buf);
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return _mm256_fmadd_ps(x, w, acc); }
  static float reduce(Acc a) { return reduce_add_256(a); }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
};

struct Avx2F32Ops {
  using Elem = float;
  using Acc = __m256;
  using XVec = __m256;
  using WVec = __m256;
  static constexpr size_t kChunk = 8;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 2, kNBs = 4;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 2, kNB = 4;
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static Acc zero() { return _mm256_setzero_ps(); }
  static __m256 load_x(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_w(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load_x_tail(const float* p, size_t n) {
    float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::memcpy(buf, p, n * sizeof(float));
    return _mm256_loadu_ps(buf);
  }
  static __m256 load_w_tail(const float* p, size_t n) { return load_x_tail(p, n); }
  static Acc dot(Acc acc, XVec x, WVec w) { return _mm256_fmadd_ps(x, w, acc); }
  static float reduce(Acc a) { return reduce_add_256(a); }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
};

}  // namespace
}  // namespace troupe
