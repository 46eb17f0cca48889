// GEMM lane operations for the AVX2 path; see gemm_impl.h for the Ops
// contract. Included only by translation units compiled with -mavx2 -mfma
// -mf16c, inside their anonymous namespace.
//
// Bf16 weights: 8 bf16 of K per step, widened to fp32 by a 16-bit shift, then
// one fused multiply-add per lane; from kStripM rows on, the same arithmetic
// in the panel kernel of gemm_strips_avx2.h. F32 weights: the same on fp32 loads.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/gemm_strips_avx2.h"  // widen_bf16, reduce_add_256, gemm_strips_avx2

namespace troupe {
namespace {

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
  // From this many rows on, gemm_run hands the call to strips() (gemm_impl.h).
  static constexpr size_t kStripM = 3;
  static void strips(const Elem* w, const Elem* x, float* out, size_t M, size_t n0, size_t n1,
                     size_t ldo, size_t K, size_t segments) {
    StripPanelsBf16 panels{w, K};
    gemm_strips_avx2(panels, x, nullptr, nullptr, out, M, n0, n1, ldo, K, segments);
  }
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

  static Acc zero() { return _mm256_setzero_ps(); }
  static __m256 load(const uint16_t* p) { return load_bf16(p); }
  static __m256 load_tail(const uint16_t* p, size_t n) { return load_bf16_tail(p, n); }
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
