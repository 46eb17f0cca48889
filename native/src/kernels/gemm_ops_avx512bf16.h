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

#include "kernels/reduce_avx512.h"  // reduce_add_512, reduce16_512

namespace troupe {
namespace {

struct Avx512Bf16Ops {
  using Elem = uint16_t;  // bf16 bits
  using Acc = __m512;
  using XVec = __m512i;  // 32 bf16
  using WVec = __m512i;
  static constexpr size_t kChunk = 32;
  // Register blocks (gemm_impl.h): accumulators + w + x of the 32 zmm.
  static constexpr int kNB1 = 4;                   // M = 1: 4 + 4 + 1
  static constexpr int kMBs = 8, kNBs = 3;         // M <= kSmallM: 24 + 3 + 1
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 4, kNB = 6;           // larger M: 24 + 6 + 1
  static void prefetch(const Elem* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

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
