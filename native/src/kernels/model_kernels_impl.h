// The forward pass's elementwise, normalization and attention kernels,
// written once in portable C++ and instantiated by each ISA translation unit
// (src/kernels/model_<isa>.cc), whose -m flags let the compiler vectorize
// them. Include after gemm_impl.h, inside no namespace.
//
// Bitwise the same on every ISA: the build uses -ffp-contract=off and no
// -ffast-math, so the compiler may only vectorize loops whose elements are
// independent; every reduction here is written with explicit lanes (kLanes
// partial sums, combined in a fixed halving tree) or as a sequential loop, so
// the order of every rounding is what the source says.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include <type_traits>

#include "kernels/fp8/e4m3.h"
#include "model/kv_layout.h"
#include "kernels/model_kernels.h"

namespace troupe {
namespace {

constexpr size_t kLanes = 16;

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }
// Round to nearest even (same as bf16.cc); NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x0040u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// e^x, Cephes-style: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6
// polynomial, times 2^n built in the exponent bits. Max relative error about
// 2 ulp. x < -87.3 gives 0 (no denormals), x > 88.3 is clamped. Branch free so
// loops over it vectorize.
inline float exp_poly(float x) {
  const bool underflow = x < -87.3f;
  float c = x > 88.3f ? 88.3f : x;
  c = c < -87.3f ? -87.3f : c;
  const float t = c * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * (r * r) + r) + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;
  const float scale = bits_to_f32(static_cast<uint32_t>(e) << 23);
  const float v = y * scale;
  return underflow ? 0.0f : v;
}

// Vectors. Two kinds of GCC vector types, element-wise operations only (the
// rounding of each lane is what the scalar source says):
//   F16x    16 fp32 lanes whatever the ISA (attention's key groups; the
//           compiler splits it into native registers; mul / add only);
//   FV      the ISA's native width, kW lanes (16 AVX-512, 8 AVX2, 4 SSE2 / NEON), for
//           the exp-heavy loops: GCC lowers compares and selects on wider-than-
//           native vectors one lane at a time, so those loops use FV. Sums that
//           must be bitwise the same on every ISA keep 16 fp64 lanes (Lanes16:
//           lane l adds the terms i = l mod 16 in order) whatever kW is.
// Vectors wider than the TU's ISA are passed by memory; the helpers are inline
// and TU-private, so the psABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float F16x __attribute__((vector_size(64)));
typedef uint16_t U16x16 __attribute__((vector_size(32)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
typedef uint8_t U8x16 __attribute__((vector_size(16)));

#if defined(__AVX512F__)
constexpr size_t kW = 16;
#elif defined(__AVX2__)
constexpr size_t kW = 8;
#else
constexpr size_t kW = 4;
#endif
typedef float FV __attribute__((vector_size(kW * 4)));
typedef int32_t IV __attribute__((vector_size(kW * 4)));
typedef float FH __attribute__((vector_size(kW * 2)));   // half of an FV
typedef double DH __attribute__((vector_size(kW * 4)));  // kW / 2 fp64 lanes

#define TROUPE_INLINE __attribute__((always_inline)) inline
TROUPE_INLINE FV splatv(float v) { return FV{} + v; }
TROUPE_INLINE FV loadv(const float* p) {
  FV f;
  std::memcpy(&f, p, sizeof f);
  return f;
}
TROUPE_INLINE void storev(float* p, FV v) { std::memcpy(p, &v, sizeof v); }
TROUPE_INLINE FV maxv(FV a, FV b) { return a > b ? a : b; }
TROUPE_INLINE float hmax(FV v) {  // exact: order free
  float m = v[0];
  for (size_t l = 1; l < kW; ++l) m = v[l] > m ? v[l] : m;
  return m;
}
#if defined(__AVX512F__)
TROUPE_INLINE FH lo_half(FV v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7); }
TROUPE_INLINE FH hi_half(FV v) { return __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15); }
#elif defined(__AVX2__)
TROUPE_INLINE FH lo_half(FV v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3); }
TROUPE_INLINE FH hi_half(FV v) { return __builtin_shufflevector(v, v, 4, 5, 6, 7); }
#else
TROUPE_INLINE FH lo_half(FV v) { return __builtin_shufflevector(v, v, 0, 1); }
TROUPE_INLINE FH hi_half(FV v) { return __builtin_shufflevector(v, v, 2, 3); }
#endif

// 16 fp64 lanes in kW / 2-wide native vectors.
struct Lanes16 {
  DH a[32 / kW];
};
TROUPE_INLINE Lanes16 lanes16_zero() { return Lanes16{}; }
// Adds v (lanes h .. h + kW - 1 of a 16-lane block; h a multiple of kW) in fp64.
TROUPE_INLINE void lanes16_add(Lanes16& L, size_t h, FV v) {
#if defined(__AVX2__) && !defined(__AVX512F__)
  // The same conversions as below, which GCC lowers here two lanes at a time through memory.
  const __m256 f = static_cast<__m256>(v);
  L.a[h / (kW / 2)] = L.a[h / (kW / 2)] + static_cast<DH>(_mm256_cvtps_pd(_mm256_castps256_ps128(f)));
  L.a[h / (kW / 2) + 1] = L.a[h / (kW / 2) + 1] + static_cast<DH>(_mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
#else
  L.a[h / (kW / 2)] = L.a[h / (kW / 2)] + __builtin_convertvector(lo_half(v), DH);
  L.a[h / (kW / 2) + 1] = L.a[h / (kW / 2) + 1] + __builtin_convertvector(hi_half(v), DH);
#endif
}
// The 16 lanes in order, into out[16].
TROUPE_INLINE void lanes16_store(const Lanes16& L, double* out) { std::memcpy(out, &L, 16 * sizeof(double)); }
// Lanes combined in a halving tree: (l, l + 8), then (l, l + 4), ...
TROUPE_INLINE double halving_sum16(double* l16) {
  for (size_t width = 8; width >= 1; width /= 2)
    for (size_t l = 0; l < width; ++l) l16[l] = l16[l] + l16[l + width];
  return l16[0];
}

// Bit l set when lane l of `p[0..16) * s` compares as asked against t: the one
// place the portable kernels use ISA intrinsics (for a 16-bit mask, which GCC
// vectors cannot give), in the scans of sampling. Exact comparisons: the same
// answer on every ISA.
enum class Cmp { Greater, GreaterEqual, Less, Equal };
template <Cmp kCmp>
TROUPE_INLINE uint32_t mask16(const float* p, float s, float t) {
#if defined(__AVX512F__) || defined(__AVX2__)
  constexpr int kOp = kCmp == Cmp::Greater ? _CMP_GT_OQ
                      : kCmp == Cmp::GreaterEqual ? _CMP_GE_OQ
                      : kCmp == Cmp::Less ? _CMP_LT_OQ
                                          : _CMP_EQ_OQ;
#endif
#if defined(__AVX512F__)
  const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(s));
  return _mm512_cmp_ps_mask(v, _mm512_set1_ps(t), kOp);
#elif defined(__aarch64__)
  // 4 x 4 lanes: each compare's all-ones lanes AND {1, 2, 4, 8}, summed, is its 4 mask bits.
  const float32x4_t sv = vdupq_n_f32(s), tv = vdupq_n_f32(t);
  static constexpr uint32_t kBits[4] = {1, 2, 4, 8};
  const uint32x4_t bits = vld1q_u32(kBits);
  uint32_t m = 0;
  for (int q = 0; q < 4; ++q) {
    const float32x4_t v = vmulq_f32(vld1q_f32(p + 4 * q), sv);
    const uint32x4_t c = kCmp == Cmp::Greater ? vcgtq_f32(v, tv)
                         : kCmp == Cmp::GreaterEqual ? vcgeq_f32(v, tv)
                         : kCmp == Cmp::Less ? vcltq_f32(v, tv)
                                             : vceqq_f32(v, tv);
    m |= vaddvq_u32(vandq_u32(c, bits)) << (4 * q);
  }
  return m;
#elif defined(__AVX2__)
  const __m256 sv = _mm256_set1_ps(s), tv = _mm256_set1_ps(t);
  const uint32_t lo = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(p), sv), tv, kOp)));
  const uint32_t hi = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_mul_ps(_mm256_loadu_ps(p + 8), sv), tv, kOp)));
  return lo | (hi << 8);
#else
  uint32_t m = 0;
  for (int l = 0; l < 16; ++l) {
    const float v = p[l] * s;
    const bool hit = kCmp == Cmp::Greater ? v > t : kCmp == Cmp::GreaterEqual ? v >= t : kCmp == Cmp::Less ? v < t : v == t;
    m |= static_cast<uint32_t>(hit) << l;
  }
  return m;
#endif
}

// exp_poly on kW lanes: the same operations in the same order, lane by lane,
// so each lane's bits equal exp_poly's (test/native checks it).
TROUPE_INLINE FV exp_polyv(FV x) {
  const IV underflow = x < splatv(-87.3f);
  FV c = x > splatv(88.3f) ? splatv(88.3f) : x;
  c = c < splatv(-87.3f) ? splatv(-87.3f) : c;
  const FV t = c * 1.44269504088896341f;
  const FV n = (t + 12582912.0f) - 12582912.0f;
  FV r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  FV p = splatv(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const FV y = (p * (r * r) + r) + 1.0f;
  const IV e = __builtin_convertvector(n, IV) + 127;
  const FV scale = (FV)(e << 23);  // bit cast
  const FV v = y * scale;
  return underflow ? FV{} : v;
}

// e^x for the weights of sampling (x = y - max <= 0): exp_poly's reduction and
// polynomial with fused multiply-adds and a hardware 2^n where the ISA has
// them, about half the instructions. Not bitwise equal to exp_poly and not the
// same on every ISA (sampling weights need neither); x < -87.3 gives 0.
TROUPE_INLINE FV exp_weightv(FV x) {
#if defined(__AVX512F__)
  const __m512 v = _mm512_max_ps(static_cast<__m512>(x), _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __mmask16 under = _mm512_cmp_ps_mask(static_cast<__m512>(x), _mm512_set1_ps(-87.3f), _CMP_LT_OQ);
  return static_cast<FV>(_mm512_maskz_scalef_ps(static_cast<__mmask16>(~under), y, n));
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 v = _mm256_max_ps(static_cast<__m256>(x), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 out = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  const __m256 under = _mm256_cmp_ps(static_cast<__m256>(x), _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
  return static_cast<FV>(_mm256_andnot_ps(under, out));
#elif defined(__aarch64__)
  const float32x4_t xv = (float32x4_t)x;
  const float32x4_t v = vmaxq_f32(xv, vdupq_n_f32(-87.3f));
  const float32x4_t n = vrndnq_f32(vmulq_f32(v, vdupq_n_f32(1.44269504088896341f)));
  float32x4_t r = vfmsq_f32(v, n, vdupq_n_f32(0.693359375f));
  r = vfmaq_f32(r, n, vdupq_n_f32(2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  const float32x4_t y = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  const float32x4_t out = vmulq_f32(y, vreinterpretq_f32_s32(e));
  const uint32x4_t under = vcltq_f32(xv, vdupq_n_f32(-87.3f));
  return (FV)vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(out), under));
#else
  return exp_polyv(x);
#endif
}

// Halving tree over kLanes partial sums: (l, l + 8), then (l, l + 4), ...
inline float reduce_lanes(float* lanes) {
  for (size_t width = kLanes / 2; width >= 1; width /= 2)
    for (size_t l = 0; l < width; ++l) lanes[l] = lanes[l] + lanes[l + width];
  return lanes[0];
}

template <class Ops>
void gemm_entry(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
                size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  gemm_run<Ops>(w, x, out, M, n0, n1, ldo, K, segments);
}

void rms_norm_impl(const float* x, const float* weight, float* out, size_t r0, size_t r1,
                   size_t H, float eps) {
  for (size_t r = r0; r < r1; ++r) {
    const float* xr = x + r * H;
    float lanes[kLanes] = {};
    size_t k = 0;
    for (; k + kLanes <= H; k += kLanes)
      for (size_t l = 0; l < kLanes; ++l) lanes[l] = lanes[l] + xr[k + l] * xr[k + l];
    for (size_t l = 0; k + l < H; ++l) lanes[l] = lanes[l] + xr[k + l] * xr[k + l];
    const float mean = reduce_lanes(lanes) / static_cast<float>(H);
    const float inv = 1.0f / std::sqrt(mean + eps);
    float* o = out + r * H;
    for (size_t i = 0; i < H; ++i) o[i] = (xr[i] * inv) * weight[i];
  }
}

void rope_impl(float* x, size_t ld, size_t heads, size_t D, const float* cos_sin, size_t r0,
               size_t r1) {
  const size_t half = D / 2;
  for (size_t r = r0; r < r1; ++r) {
    const float* cs = cos_sin + r * D;
    for (size_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * D;
      for (size_t i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half], c = cs[i], s = cs[half + i];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

void silu_mul_impl(const float* gate_up, size_t I, size_t r0, size_t r1, size_t c0, size_t c1,
                   float* out, uint16_t* out_bf16) {
  constexpr size_t kBatch = 64;
  float m[kBatch];
  for (size_t r = r0; r < r1; ++r) {
    const float* g = gate_up + r * 2 * I;
    const float* u = g + I;
    for (size_t i0 = c0; i0 < c1; i0 += kBatch) {
      const size_t n = c1 - i0 < kBatch ? c1 - i0 : kBatch;
      size_t i = 0;
      for (; i + kW <= n; i += kW) {
        const FV gv = loadv(g + i0 + i), uv = loadv(u + i0 + i);
        const FV sig = 1.0f / (1.0f + exp_polyv(-gv));
        storev(m + i, (gv * sig) * uv);
      }
      for (; i < n; ++i) {
        const float sig = 1.0f / (1.0f + exp_poly(-g[i0 + i]));
        m[i] = (g[i0 + i] * sig) * u[i0 + i];
      }
      if (out != nullptr)
        for (size_t i = 0; i < n; ++i) out[r * I + i0 + i] = m[i];
      if (out_bf16 != nullptr)
        for (size_t i = 0; i < n; ++i) out_bf16[r * I + i0 + i] = f32_to_bf16(m[i]);
    }
  }
}

void round_bf16_impl(const float* x, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
}

typedef uint16_t UHV __attribute__((vector_size(kW * 2)));  // kW bf16 lanes
typedef uint16_t U2V __attribute__((vector_size(kW * 4)));  // an IV as 2 kW 16-bit lanes

// The high half of each 32-bit lane (little endian: the odd 16-bit lanes).
TROUPE_INLINE UHV high_halves(IV v) {
  const U2V h = (U2V)v;
#if defined(__AVX512F__)
  return __builtin_shufflevector(h, h, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#elif defined(__AVX2__)
  return __builtin_shufflevector(h, h, 1, 3, 5, 7, 9, 11, 13, 15);
#else
  return __builtin_shufflevector(h, h, 1, 3, 5, 7);
#endif
}

// e4m3_round_bf16_bits on kW lanes: the same integer and fp32 operations, lane by lane.
// Every compared value is below 2^31, so signed compares order them as the scalar
// unsigned ones do.
TROUPE_INLINE UHV e4m3_round_bf16_bits_v(FV v) {
  const IV u = (IV)v;  // bit casts
  const IV ua = u & 0x7fffffff;
  constexpr int32_t kMaxBits = 0x43e00000, kMinNormalBits = 0x3c800000;  // 448, 2^-6
  const IV c = ua > kMaxBits ? IV{} + kMaxBits : ua;
  const IV normal = (c + 0x7ffff + ((c >> 20) & 1)) & static_cast<int32_t>(0xfff00000u);
  const FV sub = (((FV)c * 512.0f + 0x1p23f) - 0x1p23f) * (1.0f / 512.0f);
  const IV r = (c >= kMinNormalBits ? normal : (IV)sub) | (u & static_cast<int32_t>(0x80000000u));
  return high_halves(ua > 0x7f800000 ? u : r);
}

// max |x[i]| over i < n, NaNs skipped (0 for none): exact, so the same on every ISA.
float abs_max_impl(const float* x, size_t n) {
  IV lanes{};  // |x| bits: for non-negative floats, integer order is float order
  size_t i = 0;
  for (; i + kW <= n; i += kW) {
    const IV a = (IV)loadv(x + i) & 0x7fffffff;
    lanes = ((a > lanes) & (a <= 0x7f800000)) ? a : lanes;  // a NaN never wins
  }
  float amax = 0.0f;
  for (size_t l = 0; l < kW; ++l) {
    const float a = bits_float(static_cast<uint32_t>(lanes[l]));
    amax = a > amax ? a : amax;
  }
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

// quantize_rows_e4m3 (fp8/e4m3.h), bit for bit, kW columns at a time.
void quantize_e4m3_impl(const float* x, uint16_t* xq, float* xs, size_t r0, size_t r1, size_t K, float ub,
                        float static_scale) {
  for (size_t r = r0; r < r1; ++r) {
    const float* row = x + r * K;
    const float s = static_scale > 0.0f ? static_scale : fp8_activation_scale(abs_max_impl(row, K), ub);
    xs[r] = s;
    uint16_t* q = xq + r * K;
    size_t k = 0;
    for (; k + kW <= K; k += kW) {
      const UHV b = e4m3_round_bf16_bits_v(loadv(row + k) / s);
      std::memcpy(q + k, &b, sizeof b);
    }
    for (; k < K; ++k) q[k] = e4m3_round_bf16_bits(row[k] / s);
  }
}

// FP8 cache elements (kv_layout.h): distinct types so the templates below can
// tell the formats apart; one byte each.
struct KvE4m3 {
  uint8_t code;
};
struct KvE5m2 {
  uint8_t code;
};
template <typename T>
constexpr bool kFp8Cache = std::is_same_v<T, KvE4m3> || std::is_same_v<T, KvE5m2>;

// bf16 bits of an FP8 cache element (exact: every e4m3 / e5m2 value is a bf16 value).
template <typename T>
inline uint16_t fp8_cache_bits(T v) {
  if constexpr (std::is_same_v<T, KvE4m3>) return kE4m3Bf16[v.code];
  else return kE5m2Bf16[v.code];
}

template <typename T>
inline T to_cache(float v) {
  if constexpr (std::is_same_v<T, KvE4m3>) return KvE4m3{e4m3_encode(v)};
  else if constexpr (std::is_same_v<T, KvE5m2>) return KvE5m2{e5m2_encode(v)};
  else if constexpr (sizeof(T) == 2) return f32_to_bf16(v);
  else return v;
}
template <typename T>
inline float from_cache(T v) {
  if constexpr (kFp8Cache<T>) return bf16_to_f32(fp8_cache_bits(v));
  else if constexpr (sizeof(T) == 2) return bf16_to_f32(v);
  else return v;
}

template <typename T>
void kv_write_typed(const float* k, const float* v, size_t ld, const int32_t* slots, size_t r0,
                    size_t r1, T* kv, const KvLayout& L) {
  const size_t D = L.head_dim, bs = L.block_size;
  for (size_t r = r0; r < r1; ++r) {
    if (slots[r] < 0) continue;
    const size_t page = static_cast<size_t>(slots[r]) / bs, j = static_cast<size_t>(slots[r]) % bs;
    for (size_t g = 0; g < L.num_kv_heads; ++g) {
      const float* kr = k + r * ld + g * D;
      const float* vr = v + r * ld + g * D;
      T* kp = kv + L.k_offset(page, g);
      T* vp = kv + L.v_offset(page, g) + j * D;
      if constexpr (kFp8Cache<T>) {  // code = fp8(value / scale)
        for (size_t d = 0; d < D; ++d) kp[d * bs + j] = to_cache<T>(kr[d] / L.k_scale);
        for (size_t d = 0; d < D; ++d) vp[d] = to_cache<T>(vr[d] / L.v_scale);
      } else {
        for (size_t d = 0; d < D; ++d) kp[d * bs + j] = to_cache<T>(kr[d]);
        for (size_t d = 0; d < D; ++d) vp[d] = to_cache<T>(vr[d]);
      }
    }
  }
}

void kv_write_impl(const float* k, const float* v, size_t ld, const int32_t* slots, size_t r0,
                   size_t r1, void* kv, const KvLayout& L) {
  if (L.fp8 == KvFp8::E4m3) kv_write_typed(k, v, ld, slots, r0, r1, static_cast<KvE4m3*>(kv), L);
  else if (L.fp8 == KvFp8::E5m2) kv_write_typed(k, v, ld, slots, r0, r1, static_cast<KvE5m2*>(kv), L);
  else if (L.bf16) kv_write_typed(k, v, ld, slots, r0, r1, static_cast<uint16_t*>(kv), L);
  else kv_write_typed(k, v, ld, slots, r0, r1, static_cast<float*>(kv), L);
}

// Attention of one task (a sequence's query rows for the query heads of one
// GQA group) is done in tiles of "slots": a slot is one (query head, query
// row) pair, and a tile holds every head of the group for up to
// kMaxSlots / group consecutive rows (decode: one row, `group` slots). A tile
// reads each K / V page of the shared kv head once for all its slots, and its
// scores are vector operations across 16 keys of the page (K is stored
// transposed) for every slot in lockstep; V accumulation is vectorized over
// the head dim. Each slot's arithmetic is exactly the single-query algorithm
// of kv_layout.h (attend_page), so neither the tiling nor the task split
// changes a bit.
constexpr size_t kMaxSlots = 16;
constexpr size_t kMaxHeadDim = 256;
constexpr size_t kKeyGroup = 16;  // keys scored together (one 512-bit vector of fp32)
// Slots whose scores one pass of attend_tile_page keeps in registers: a slot's
// 16 scores are one zmm on AVX-512, but two ymm on AVX2 (four q registers on
// NEON), where 16 slots would spill at every step of d; there a tile's slots
// go through in fours. Per slot the operations are the same either way.
#if defined(__AVX512F__)
constexpr size_t kLockstepSlots = kMaxSlots;
#else
constexpr size_t kLockstepSlots = 4;
#endif
alignas(64) constexpr float kZeroQuery[kMaxHeadDim] = {};  // q of an absent slot

// One query against keys [0, n) of one page: the update of kv_layout.h.
// kD is the head dim when known at compile time (0: runtime D). When
// block_size is a multiple of kKeyGroup, scores are computed for whole groups
// of 16 keys (the lanes past n read stale slots and are ignored); each score
// is still sum_d q[d] * k[d][j] in d order, so the bits do not depend on it.
template <typename T, size_t kD>
inline void attend_page(const float* q, const T* kp, const T* vp, size_t n, size_t D, size_t bs,
                        float scale, float* s, float& m, float& l, float* acc) {
  if (kD != 0) D = kD;
  if (bs % kKeyGroup == 0) {
    for (size_t j0 = 0; j0 < n; j0 += kKeyGroup) {
      float sv[kKeyGroup] = {};
      for (size_t d = 0; d < D; ++d) {
        const float qd = q[d];
        const T* kd = kp + d * bs + j0;
        for (size_t jj = 0; jj < kKeyGroup; ++jj) sv[jj] = sv[jj] + qd * from_cache<T>(kd[jj]);
      }
      for (size_t jj = 0; jj < kKeyGroup; ++jj) s[j0 + jj] = sv[jj];
    }
  } else {
    for (size_t j = 0; j < n; ++j) s[j] = 0.0f;
    for (size_t d = 0; d < D; ++d) {
      const float qd = q[d];
      const T* kd = kp + d * bs;
      for (size_t j = 0; j < n; ++j) s[j] = s[j] + qd * from_cache<T>(kd[j]);
    }
  }
  float bm = -INFINITY;
  for (size_t j = 0; j < n; ++j) {
    s[j] = s[j] * scale;
    bm = s[j] > bm ? s[j] : bm;
  }
  const float m_new = m > bm ? m : bm;
  const float alpha = m == -INFINITY ? 0.0f : exp_poly(m - m_new);
  {
    size_t j = 0;
    for (; j + kW <= n; j += kW) storev(s + j, exp_polyv(loadv(s + j) - m_new));
    for (; j < n; ++j) s[j] = exp_poly(s[j] - m_new);
  }
  float li = l * alpha;
  for (size_t j = 0; j < n; ++j) li = li + s[j];
  l = li;
  m = m_new;
  if (kD != 0) {
    float av[kD == 0 ? 1 : kD];
    for (size_t d = 0; d < kD; ++d) av[d] = acc[d] * alpha;
    for (size_t j = 0; j < n; ++j) {
      const float pj = s[j];
      const T* vj = vp + j * kD;
      for (size_t d = 0; d < kD; ++d) av[d] = av[d] + pj * from_cache<T>(vj[d]);
    }
    for (size_t d = 0; d < kD; ++d) acc[d] = av[d];
  } else {
    for (size_t d = 0; d < D; ++d) acc[d] = acc[d] * alpha;
    for (size_t j = 0; j < n; ++j) {
      const float pj = s[j];
      const T* vj = vp + j * D;
      for (size_t d = 0; d < D; ++d) acc[d] = acc[d] + pj * from_cache<T>(vj[d]);
    }
  }
}

// A tile of Q slots against one page, in lockstep, for block_size a multiple
// of kKeyGroup and a compile-time head dim. Per slot it performs exactly
// attend_page's operations in the same order (scores sum d in order; l and
// acc add keys in j order), so the bits are the same; the lockstep only lets
// independent slots fill the vector units. Keys past a slot's own n are
// masked: their score becomes -inf, their weight exp(-inf) = 0, which l adds
// as an exact +0 and acc never sees. Absent slots (past the tile's end, or
// whose query precedes this page) have n = 0 and a zero q.

#if defined(__AVX2__) && !defined(__AVX512F__)
// 16 cache elements at p as fp32 in two ymm (lanes 0-7, 8-15): load16's values.
struct Ymm2 {
  __m256 lo, hi;
};
template <typename T>
TROUPE_INLINE Ymm2 load16_ymm(const T* p) {
  if constexpr (kFp8Cache<T>) {
    // Through fp16, as load16 on AVX-512 (F16C: every AVX2 CPU has it).
    constexpr bool e4 = std::is_same_v<T, KvE4m3>;
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i h = e4 ? _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16(static_cast<short>(0xbfff)))
                         : _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8);
    __m256 lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h)), hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    if constexpr (e4) lo = _mm256_mul_ps(lo, _mm256_set1_ps(256.0f)), hi = _mm256_mul_ps(hi, _mm256_set1_ps(256.0f));
    return {lo, hi};
  } else if constexpr (sizeof(T) == 2) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i lo = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(w)), 16);
    const __m256i hi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(w, 1)), 16);
    return {_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi)};
  } else {
    return {_mm256_loadu_ps(reinterpret_cast<const float*>(p)), _mm256_loadu_ps(reinterpret_cast<const float*>(p) + 8)};
  }
}
#endif

template <typename T>
TROUPE_INLINE F16x load16(const T* p) {
  if constexpr (kFp8Cache<T>) {
#if defined(__F16C__) && defined(__AVX512F__)
    // Through fp16 (F16C; exact): e5m2 is the top byte of an fp16; an e4m3 code sign-extended
    // to 16 bits and shifted left 7 is the fp16 of value * 2^-8 once bit 14 (a sign copy) is
    // cleared (subnormals land on fp16 subnormals), and * 256 is exact.
    constexpr bool e4 = std::is_same_v<T, KvE4m3>;
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i h = e4 ? _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7), _mm256_set1_epi16(static_cast<short>(0xbfff)))
                         : _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8);
    __m512 v = _mm512_cvtph_ps(h);
    if constexpr (e4) v = _mm512_mul_ps(v, _mm512_set1_ps(256.0f));
    F16x f;
    std::memcpy(&f, &v, sizeof f);
    return f;
#elif defined(__F16C__) && defined(__AVX2__)
    const Ymm2 v = load16_ymm(p);
    F16x f;
    std::memcpy(&f, &v.lo, sizeof v.lo);
    std::memcpy(reinterpret_cast<char*>(&f) + sizeof v.lo, &v.hi, sizeof v.hi);
    return f;
#else
    // 16 codes -> fp32 in lanes, the same values as the table (from_cache): a normal code's
    // exponent and mantissa bits shifted into place with the bias difference added
    // (e4m3: 120, e5m2: 112); a subnormal (exponent 0) is its mantissa times 2^-9 / 2^-16
    // (an exact int -> float conversion); the sign bit moved to bit 31.
    U8x16 b;
    std::memcpy(&b, p, sizeof b);
    const U32x16 c = __builtin_convertvector(b, U32x16);
    const U32x16 mag = c & 0x7fu;
    constexpr bool e4 = std::is_same_v<T, KvE4m3>;
    const U32x16 normal = (mag << (e4 ? 20 : 21)) + ((e4 ? 120u : 112u) << 23);
    const F16x sub = __builtin_convertvector(mag, F16x) * (e4 ? 1.0f / 512.0f : 1.0f / 65536.0f);
    U32x16 subbits;
    std::memcpy(&subbits, &sub, sizeof subbits);
    const U32x16 bits = (mag >= (e4 ? 8u : 4u) ? normal : subbits) | ((c & 0x80u) << 24);
    F16x f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
#endif
  } else if constexpr (sizeof(T) == 2) {
    U16x16 h;
    std::memcpy(&h, p, sizeof h);
    const U32x16 w = __builtin_convertvector(h, U32x16) << 16;
    F16x f;
    std::memcpy(&f, &w, sizeof f);
    return f;
  } else {
    F16x f;
    std::memcpy(&f, p, sizeof f);
    return f;
  }
}

template <typename T, size_t kD, size_t Q>
inline void attend_tile_page(const float* const* qp, const size_t* n, const T* kp, const T* vp,
                             size_t bs, float scale, float (*S)[kMaxBlockSize + kKeyGroup],
                             float* m, float* l, float (*acc)[kMaxHeadDim]) {
  static_assert(kKeyGroup == 16 && kD % 16 == 0 && Q <= kMaxSlots, "16-lane vectors");
  for (size_t j0 = 0; j0 < bs; j0 += kKeyGroup) {
#if defined(__AVX2__) && !defined(__AVX512F__)
    // GCC builds `float * F16x` through the stack on AVX2 (16 scalar stores, then loads
    // that cannot be forwarded): the same mul-then-add per lane, in ymm intrinsics.
    __m256 lo[Q], hi[Q];
    for (size_t i = 0; i < Q; ++i) lo[i] = hi[i] = _mm256_setzero_ps();
    for (size_t d = 0; d < kD; ++d) {
      const Ymm2 kf = load16_ymm(kp + d * bs + j0);
#pragma GCC unroll 16
      for (size_t i = 0; i < Q; ++i) {
        const __m256 q = _mm256_broadcast_ss(&qp[i][d]);
        lo[i] = _mm256_add_ps(lo[i], _mm256_mul_ps(q, kf.lo));
        hi[i] = _mm256_add_ps(hi[i], _mm256_mul_ps(q, kf.hi));
      }
    }
    for (size_t i = 0; i < Q; ++i) {
      float* row = &S[i][j0];
      _mm256_storeu_ps(row, _mm256_mul_ps(lo[i], _mm256_set1_ps(scale)));
      _mm256_storeu_ps(row + 8, _mm256_mul_ps(hi[i], _mm256_set1_ps(scale)));
      for (size_t jj = n[i] > j0 ? n[i] - j0 : 0; jj < kKeyGroup; ++jj) row[jj] = -INFINITY;
    }
#else
    F16x sv[Q];
    for (size_t i = 0; i < Q; ++i) sv[i] = F16x{};
    for (size_t d = 0; d < kD; ++d) {
      const F16x kf = load16(kp + d * bs + j0);
#pragma GCC unroll 16
      for (size_t i = 0; i < Q; ++i) sv[i] = sv[i] + qp[i][d] * kf;
    }
    for (size_t i = 0; i < Q; ++i) {
      const F16x v = sv[i] * scale;
      for (size_t jj = 0; jj < kKeyGroup; ++jj) S[i][j0 + jj] = j0 + jj < n[i] ? v[jj] : -INFINITY;
    }
#endif
  }
  float m_new[Q], alpha[Q];
  for (size_t i = 0; i < Q; ++i) {
    float bm = -INFINITY;
    for (size_t j = 0; j < bs; ++j) bm = S[i][j] > bm ? S[i][j] : bm;  // max is exact: order free
    m_new[i] = m[i] > bm ? m[i] : bm;
    alpha[i] = m[i] == -INFINITY ? 0.0f : exp_poly(m[i] - m_new[i]);
  }
  for (size_t i = 0; i < Q; ++i) {
    if (n[i] == 0) {
      for (size_t j = 0; j < bs; ++j) S[i][j] = 0.0f;
      continue;
    }
    for (size_t j = 0; j < bs; j += kW) storev(&S[i][j], exp_polyv(loadv(&S[i][j]) - m_new[i]));
  }
  for (size_t i = 0; i < Q; ++i) l[i] = l[i] * alpha[i];
  for (size_t j = 0; j < bs; ++j)
    for (size_t i = 0; i < Q; ++i) l[i] = l[i] + S[i][j];
  // The page's V widened to fp32 once for the whole tile (exact for bf16 and FP8 codes).
  alignas(64) float vf[kMaxBlockSize * kD];
  if constexpr (sizeof(T) != 4) {
    size_t rows = 0;
    for (size_t i = 0; i < Q; ++i) rows = n[i] > rows ? n[i] : rows;
    for (size_t e = 0; e < rows * kD; e += 16) {
#if defined(__AVX2__) && !defined(__AVX512F__)
      const Ymm2 v = load16_ymm(vp + e);
      _mm256_store_ps(vf + e, v.lo);
      _mm256_store_ps(vf + e + 8, v.hi);
#else
      const F16x v = load16(vp + e);
      std::memcpy(vf + e, &v, sizeof v);
#endif
    }
  }
  const float* vsrc = sizeof(T) != 4 ? vf : reinterpret_cast<const float*>(vp);
  for (size_t i = 0; i < Q; ++i) {
    if (n[i] == 0) continue;
    m[i] = m_new[i];
#if defined(__AVX2__) && !defined(__AVX512F__)
    // 64 lanes of acc at a time in 8 ymm (each lane still adds its keys in j order).
    for (size_t d0 = 0; d0 < kD; d0 += 64) {
      constexpr size_t kC = kD < 64 ? kD / 8 : 8;
      __m256 av[kC];
      const __m256 al = _mm256_set1_ps(alpha[i]);
      for (size_t c = 0; c < kC; ++c) av[c] = _mm256_mul_ps(_mm256_load_ps(&acc[i][d0 + c * 8]), al);
      for (size_t j = 0; j < n[i]; ++j) {
        const __m256 pj = _mm256_broadcast_ss(&S[i][j]);
        const float* vj = vsrc + j * kD + d0;
        for (size_t c = 0; c < kC; ++c) av[c] = _mm256_add_ps(av[c], _mm256_mul_ps(pj, _mm256_loadu_ps(vj + c * 8)));
      }
      for (size_t c = 0; c < kC; ++c) _mm256_store_ps(&acc[i][d0 + c * 8], av[c]);
    }
#else
    constexpr size_t kV = kD / 16;
    F16x av[kV];
    for (size_t c = 0; c < kV; ++c) {
      std::memcpy(&av[c], &acc[i][c * 16], sizeof(F16x));
      av[c] = av[c] * alpha[i];
    }
    for (size_t j = 0; j < n[i]; ++j) {
      const float pj = S[i][j];
      for (size_t c = 0; c < kV; ++c) av[c] = av[c] + pj * load16(vsrc + j * kD + c * 16);
    }
    for (size_t c = 0; c < kV; ++c) std::memcpy(&acc[i][c * 16], &av[c], sizeof(F16x));
#endif
  }
}

template <typename T, size_t kD>
void attention_typed(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  const KvLayout& L = a.layout;
  const size_t D = L.head_dim, bs = L.block_size;
  const size_t group = a.num_heads / L.num_kv_heads;
  const T* kv = static_cast<const T*>(a.kv);
  // A tile: `heads` heads of the group (all of them unless the group exceeds
  // the slots) times up to `rows` query rows; slot i = (head i / rows, row i % rows).
  const size_t heads = group < kMaxSlots ? group : kMaxSlots;
  const size_t rows = kMaxSlots / heads;
  const bool vector_path = kD != 0 && bs % kKeyGroup == 0;
  float m[kMaxSlots], l[kMaxSlots];
  alignas(64) float acc[kMaxSlots][kMaxHeadDim];
  alignas(64) float s[kMaxBlockSize + kKeyGroup];
  alignas(64) float scores[kMaxSlots][kMaxBlockSize + kKeyGroup];
  const float* qp[kMaxSlots];
  size_t pos[kMaxSlots];
  float* op[kMaxSlots];
  for (size_t t = t0; t < t1; ++t) {
    const AttentionTask& task = tasks[t];
    const size_t qlen = static_cast<size_t>(a.query_start[task.seq + 1] - a.query_start[task.seq]);
    const size_t ctx = static_cast<size_t>(a.context_lens[task.seq]);
    const size_t first_pos = ctx - qlen;  // position of query 0 of this sequence
    const size_t first_row = static_cast<size_t>(a.query_start[task.seq]);
    const int32_t* table = a.block_tables + task.seq * a.max_blocks;
    const size_t g = task.kv_head;
    for (size_t q0 = task.q_begin; q0 < task.q_end; q0 += rows) {
      const size_t nq = task.q_end - q0 < rows ? task.q_end - q0 : rows;
      for (size_t h0 = 0; h0 < group; h0 += heads) {
        const size_t nh = group - h0 < heads ? group - h0 : heads;
        const size_t slots = nq * nh;
        for (size_t i = 0; i < slots; ++i) {
          const size_t head = g * group + h0 + i / nq, row = first_row + q0 + i % nq;
          qp[i] = a.q + row * a.ld_q + head * D;
          op[i] = a.out + row * a.ld_out + head * D;
          pos[i] = first_pos + q0 + i % nq;
          m[i] = -INFINITY;
          l[i] = 0.0f;
          for (size_t d = 0; d < D; ++d) acc[i][d] = 0.0f;
        }
        for (size_t i = slots; i < kMaxSlots; ++i) m[i] = -INFINITY, l[i] = 0.0f;
        const size_t last_pos = first_pos + q0 + nq - 1;
        for (size_t b = 0; b <= last_pos / bs; ++b) {
          const size_t page = static_cast<size_t>(table[b]);
          const T* kp = kv + L.k_offset(page, g);
          const T* vp = kv + L.v_offset(page, g);
          if (vector_path && slots > 1) {
            size_t n[kMaxSlots];
            const float* qt[kMaxSlots];
            for (size_t i = 0; i < kMaxSlots; ++i) {
              n[i] = i >= slots || b * bs > pos[i] ? 0 : (pos[i] - b * bs + 1 < bs ? pos[i] - b * bs + 1 : bs);
              qt[i] = n[i] == 0 ? kZeroQuery : qp[i];
            }
            constexpr size_t kd = kD == 0 ? 64 : kD;
            if constexpr (kLockstepSlots < kMaxSlots) {
              for (size_t s0 = 0; s0 < slots; s0 += kLockstepSlots)
                attend_tile_page<T, kd, kLockstepSlots>(qt + s0, n + s0, kp, vp, bs, a.scale, scores + s0, m + s0, l + s0, acc + s0);
            } else if (slots <= 4) {
              attend_tile_page<T, kd, 4>(qt, n, kp, vp, bs, a.scale, scores, m, l, acc);
            } else if (slots <= 8) {
              attend_tile_page<T, kd, 8>(qt, n, kp, vp, bs, a.scale, scores, m, l, acc);
            } else {
              attend_tile_page<T, kd, 16>(qt, n, kp, vp, bs, a.scale, scores, m, l, acc);
            }
            continue;
          }
          for (size_t i = 0; i < slots; ++i) {
            if (b * bs > pos[i]) continue;  // this page starts after the query: masked whole
            const size_t n = pos[i] - b * bs + 1 < bs ? pos[i] - b * bs + 1 : bs;
            attend_page<T, kD>(qp[i], kp, vp, n, D, bs, a.scale, s, m[i], l[i], acc[i]);
          }
        }
        for (size_t i = 0; i < slots; ++i)
          for (size_t d = 0; d < D; ++d) op[i][d] = acc[i][d] / l[i];
        if (a.v_scale != 1.0f)  // FP8 cache: V codes were value / v_scale
          for (size_t i = 0; i < slots; ++i)
            for (size_t d = 0; d < D; ++d) op[i][d] = op[i][d] * a.v_scale;
      }
    }
  }
}

template <typename T>
void attention_dispatch(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  switch (a.layout.head_dim) {
    case 16: return attention_typed<T, 16>(a, tasks, t0, t1);
    case 32: return attention_typed<T, 32>(a, tasks, t0, t1);
    case 64: return attention_typed<T, 64>(a, tasks, t0, t1);
    case 128: return attention_typed<T, 128>(a, tasks, t0, t1);
    default: return attention_typed<T, 0>(a, tasks, t0, t1);
  }
}

void attention_impl(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  if (a.layout.fp8 == KvFp8::E4m3) attention_dispatch<KvE4m3>(a, tasks, t0, t1);
  else if (a.layout.fp8 == KvFp8::E5m2) attention_dispatch<KvE5m2>(a, tasks, t0, t1);
  else if (a.layout.bf16) attention_dispatch<uint16_t>(a, tasks, t0, t1);
  else attention_dispatch<float>(a, tasks, t0, t1);
}

void exp_impl(const float* x, float* out, size_t n) {
  size_t i = 0;
  for (; i + kW <= n; i += kW) storev(out + i, exp_polyv(loadv(x + i)));
  for (; i < n; ++i) out[i] = exp_poly(x[i]);
}

// Max in 16 lanes (exact: order free). Sum: lane l adds the terms i = l mod 16
// in i order, in fp64; the lanes are combined in a halving tree.
void tile_lse_impl(const float* logits, size_t n, float* tile_max, double* tile_sum) {
  FV mv = splatv(-INFINITY);
  size_t i = 0;
  for (; i + kW <= n; i += kW) mv = maxv(loadv(logits + i), mv);
  float mx = hmax(mv);
  for (; i < n; ++i) mx = logits[i] > mx ? logits[i] : mx;
  Lanes16 lanes = lanes16_zero();
  i = 0;
  for (; i + 16 <= n; i += 16)
    for (size_t h = 0; h < 16; h += kW) lanes16_add(lanes, h, exp_polyv(loadv(logits + i + h) - mx));
  double sums[16];
  lanes16_store(lanes, sums);
  for (size_t l = 0; i < n; ++i, ++l) sums[l] = sums[l] + static_cast<double>(exp_poly(logits[i] - mx));
  *tile_max = mx;
  *tile_sum = halving_sum16(sums);
}

// A grammar's mask, 32 logits a word (bit b set: logit b kept). mask_word blends
// each vector with the masked value under its bits and stores it whole (AVX-512:
// no branch, masks mix all-clear, all-set and mixed words unpredictably; a whole
// store, unlike a masked one, forwards to the loads that follow); elsewhere an
// all-set word is left alone.
TROUPE_INLINE void mask_bits(float* l, size_t count, uint32_t word, float masked) {
  for (size_t b = 0; b < count; ++b) l[b] = ((word >> b) & 1u) != 0 ? l[b] : masked;
}

#if defined(__AVX512F__)
TROUPE_INLINE void mask_word(float* l, uint32_t word, float masked) {
  const __m512 m = _mm512_set1_ps(masked);
  _mm512_storeu_ps(l, _mm512_mask_mov_ps(m, static_cast<__mmask16>(word), _mm512_loadu_ps(l)));
  _mm512_storeu_ps(l + 16, _mm512_mask_mov_ps(m, static_cast<__mmask16>(word >> 16), _mm512_loadu_ps(l + 16)));
}
#else
TROUPE_INLINE void mask_word(float* l, uint32_t word, float masked) {
  if (word == 0xffffffffu) return;
#if defined(__AVX2__)
  // Lane j of each 8 selects bit j: (bits & 1 << j) == 1 << j keeps the logit.
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 m = _mm256_set1_ps(masked);
  for (int q = 0; q < 4; ++q) {
    const __m256i bits = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(word >> (8 * q))), sel);
    const __m256 keep = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, sel));
    _mm256_storeu_ps(l + 8 * q, _mm256_blendv_ps(m, _mm256_loadu_ps(l + 8 * q), keep));
  }
#else
  mask_bits(l, 32, word, masked);
#endif
}
#endif

// tile_lse of the tile with the grammar's mask applied, writing the mask into
// the tile as it goes. Bitwise tile_lse's result on the masked tile: the max
// sees every entry (a masked one as `masked`) in the same kW-vector order; a
// 16-entry block the mask clears whole is left out of the sum only when
// masked's term is exactly 0 (adding +0 leaves each fp64 lane as it is); a
// tile the mask clears whole has max = masked and sum = n (each term is
// exp(0) = 1, the sum of integers exact).
void masked_tile_lse_impl(float* logits, size_t n, const uint32_t* words, float masked, float* tile_max,
                          double* tile_sum) {
  const size_t whole = n / 32;
  const FV m = splatv(masked);
  FV mv = splatv(-INFINITY);
  bool any_allowed = false;
  size_t i = 0;
  for (; i < whole * 32; i += 32) {
    float* l = logits + i;
    const uint32_t word = words[i / 32];
    if (word == 0) {
      for (size_t h = 0; h < 32; h += kW) {
        storev(l + h, m);
        mv = maxv(m, mv);
      }
      continue;
    }
    any_allowed = true;
    mask_word(l, word, masked);
    for (size_t h = 0; h < 32; h += kW) mv = maxv(loadv(l + h), mv);
  }
  if (i < n) {
    const uint32_t tail = words[whole] & ((1u << (n - i)) - 1u);
    any_allowed = any_allowed || tail != 0;
    mask_bits(logits + i, n - i, tail, masked);
  }
  for (; i + kW <= n; i += kW) mv = maxv(loadv(logits + i), mv);
  float mx = hmax(mv);
  for (; i < n; ++i) mx = logits[i] > mx ? logits[i] : mx;
  *tile_max = mx;
  if (!any_allowed) {
    *tile_sum = static_cast<double>(n);
    return;
  }
  const bool skip_masked = exp_poly(masked - mx) == 0.0f;
  Lanes16 lanes = lanes16_zero();
  i = 0;
  for (; i + 16 <= n; i += 16) {
    if (skip_masked && ((words[i / 32] >> (i & 16)) & 0xffffu) == 0) continue;
    for (size_t h = 0; h < 16; h += kW) lanes16_add(lanes, h, exp_polyv(loadv(logits + i + h) - mx));
  }
  double sums[16];
  lanes16_store(lanes, sums);
  for (size_t l = 0; i < n; ++i, ++l) sums[l] = sums[l] + static_cast<double>(exp_poly(logits[i] - mx));
  *tile_sum = halving_sum16(sums);
}

void argmax_impl(const float* x, size_t n, float* max, size_t* index) {
  FV mv = splatv(-INFINITY);
  size_t i = 0;
  for (; i + kW <= n; i += kW) mv = maxv(loadv(x + i), mv);
  float mx = hmax(mv);
  for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  size_t at = 0;
  if (mx != -INFINITY) {  // else all -inf or NaN: the first entry, as a sequential scan keeps
    while (at + 16 <= n) {
      const uint32_t m = mask16<Cmp::Equal>(x + at, 1.0f, mx);
      if (m != 0) {
        at += static_cast<size_t>(__builtin_ctz(m));
        break;
      }
      at += 16;
    }
    while (!(x[at] == mx)) ++at;
  }
  *max = mx;
  *index = at;
}

void exp_blocks_impl(const float* x, size_t n, float s, float m, float floor, float* e, double* sums) {
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSampleBlock, ++blk) {
    const size_t b1 = n - b0 < kSampleBlock ? n : b0 + kSampleBlock;
    Lanes16 lanes = lanes16_zero();
    size_t i = b0;
    for (; i + 16 <= b1; i += 16)
      for (size_t h = 0; h < 16; h += kW) {
        const FV y = loadv(x + i + h) * s;
        const FV v = y >= splatv(floor) ? exp_weightv(y - m) : FV{};
        if (e != nullptr) storev(e + i + h, v);
        lanes16_add(lanes, h, v);
      }
    double l16[16];
    lanes16_store(lanes, l16);
    for (size_t l = 0; i < b1; ++i, ++l) {
      const float y = x[i] * s;
      const float v = y >= floor ? exp_poly(y - m) : 0.0f;
      if (e != nullptr) e[i] = v;
      l16[l] = l16[l] + static_cast<double>(v);
    }
    sums[blk] = halving_sum16(l16);
  }
}

#if defined(__AVX2__) && !defined(__AVX512F__)
// Compression of 8 lanes on AVX2 (it has no compress instruction): entry m of
// kCompress8 packs, 4 bits per slot from the lowest, the lanes whose bit is set in
// m in ascending order (slots past them 0); compress8_index expands it to the
// vpermd index vector that moves those lanes to the front.
struct Compress8Table {
  uint32_t e[256];
};
constexpr Compress8Table make_compress8_table() {
  Compress8Table t{};
  for (uint32_t m = 0; m < 256; ++m) {
    uint32_t packed = 0, slot = 0;
    for (uint32_t lane = 0; lane < 8; ++lane)
      if (m & (1u << lane)) packed |= lane << (4 * slot++);
    t.e[m] = packed;
  }
  return t;
}
inline constexpr Compress8Table kCompress8 = make_compress8_table();
TROUPE_INLINE __m256i compress8_index(uint32_t mask) {
  const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int32_t>(kCompress8.e[mask])), shifts),
                          _mm256_set1_epi32(7));
}
// The (id, y) lanes with y > t moved to the front and stored whole at out_ids /
// out_y (8 slots each); returns how many were kept.
TROUPE_INLINE size_t compress8_greater(__m256i ids, __m256 y, float t, int32_t* out_ids, float* out_y) {
  const uint32_t m = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(y, _mm256_set1_ps(t), _CMP_GT_OQ)));
  const __m256i at = compress8_index(m);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out_ids), _mm256_permutevar8x32_epi32(ids, at));
  _mm256_storeu_ps(out_y, _mm256_permutevar8x32_ps(y, at));
  return static_cast<size_t>(__builtin_popcount(m));
}
#endif

size_t scan_greater_impl(const float* x, size_t n, float s, float t, size_t* from, int32_t* out,
                         size_t cap) {
  size_t i = *from, c = 0;
#if defined(__AVX512F__)
  // Whole blocks while 16 slots are free: the hits' indices compressed into a
  // register and stored whole (no branch per hit; the slots past the hits are
  // overwritten by the next block or left unused).
  if (i % 16 == 0) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= n && cap - c >= 16; i += 16) {
      const __mmask16 m = static_cast<__mmask16>(mask16<Cmp::Greater>(x + i, s, t));
      const __m512i ids = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(i)));
      _mm512_storeu_si512(out + c, _mm512_maskz_compress_epi32(m, ids));
      c += static_cast<size_t>(__builtin_popcount(m));
    }
  }
#endif
  while (c < cap && i < n) {
    if (i % 16 == 0 && i + 16 <= n) {  // a whole block: its hits from one compare, if they fit
      uint32_t m = mask16<Cmp::Greater>(x + i, s, t);
      if (static_cast<size_t>(__builtin_popcount(m)) <= cap - c) {
        for (; m != 0; m &= m - 1) out[c++] = static_cast<int32_t>(i + static_cast<size_t>(__builtin_ctz(m)));
        i += 16;
        continue;
      }
    }
    if (x[i] * s > t) out[c++] = static_cast<int32_t>(i);
    ++i;
  }
  *from = i;
  return c;
}

// The pairs (base + i, y = x[i] * s) with y > t, i ascending, into out_ids /
// out_y (room for n + 16); returns how many.
size_t scan_greater_pairs_impl(const float* x, size_t n, float s, float t, int32_t base, int32_t* out_ids,
                               float* out_y) {
  size_t c = 0, i = 0;
#if defined(__AVX512F__)
  // 16 logits per step, the kept indices compressed into a register and stored
  // whole; their y read back afterwards (one compress per step, not two).
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + 16 <= n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(mask16<Cmp::Greater>(x + i, s, t));
    const __m512i ids = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(i)));
    _mm512_storeu_si512(out_ids + c, _mm512_maskz_compress_epi32(m, ids));
    c += static_cast<size_t>(__builtin_popcount(m));
  }
  for (size_t j = 0; j < c; ++j) {
    out_y[j] = x[out_ids[j]] * s;
    out_ids[j] += base;
  }
#elif defined(__AVX2__)
  // 8 logits per step: the kept ones' y and ids moved to the front of their
  // registers (kCompress8) and stored whole.
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; i + 8 <= n; i += 8)
    c += compress8_greater(_mm256_add_epi32(lanes, _mm256_set1_epi32(base + static_cast<int32_t>(i))),
                           _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(s)), t, out_ids + c, out_y + c);
#endif
  for (; i < n; ++i) {  // branch free: every pair written, the kept ones advance
    const float y = x[i] * s;
    out_ids[c] = base + static_cast<int32_t>(i);
    out_y[c] = y;
    c += y > t ? 1 : 0;
  }
  return c;
}

// The (id, y) pairs with y > t, in order, into out_ids / out_y (room for n + 16);
// returns how many.
size_t filter_greater_impl(const int32_t* ids, const float* y, size_t n, float t, int32_t* out_ids,
                           float* out_y) {
  size_t c = 0, i = 0;
#if defined(__AVX512F__)
  // 16 pairs per step, the kept ones compressed into registers and stored whole.
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(y + i);
    const __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(t), _CMP_GT_OQ);
    _mm512_storeu_si512(out_ids + c, _mm512_maskz_compress_epi32(m, _mm512_loadu_si512(ids + i)));
    _mm512_storeu_ps(out_y + c, _mm512_maskz_compress_ps(m, v));
    c += static_cast<size_t>(__builtin_popcount(m));
  }
#elif defined(__AVX2__)
  // 8 pairs per step, the kept ones moved to the front (kCompress8) and stored
  // whole (in place too: each step's loads precede its stores, and c <= i).
  for (; i + 8 <= n; i += 8)
    c += compress8_greater(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ids + i)), _mm256_loadu_ps(y + i), t,
                           out_ids + c, out_y + c);
#endif
  for (; i < n; ++i) {  // branch free: every pair written, the kept ones advance
    out_ids[c] = ids[i];
    out_y[c] = y[i];
    c += y[i] > t ? 1 : 0;
  }
  return c;
}

// sums[b] = the e[i] of block b (kSampleBlock entries) whose y = x[i] * s >= floor, in fp64
// (lane l adding i = l mod 16, lanes in a halving tree).
void masked_sums_impl(const float* x, size_t n, float s, float floor, const float* e, double* sums) {
  for (size_t b0 = 0, blk = 0; b0 < n; b0 += kSampleBlock, ++blk) {
    const size_t b1 = n - b0 < kSampleBlock ? n : b0 + kSampleBlock;
    Lanes16 lanes = lanes16_zero();
    size_t i = b0;
    for (; i + 16 <= b1; i += 16)
      for (size_t h = 0; h < 16; h += kW)
        lanes16_add(lanes, h, loadv(x + i + h) * s >= splatv(floor) ? loadv(e + i + h) : FV{});
    double l16[16];
    lanes16_store(lanes, l16);
    for (size_t l = 0; i < b1; ++i, ++l)
      if (x[i] * s >= floor) l16[l] = l16[l] + static_cast<double>(e[i]);
    sums[blk] = halving_sum16(l16);
  }
}

template <class Bf16Ops, class F32Ops>
constexpr ModelKernels make_model_kernels() {
  return ModelKernels{
      &gemm_entry<Bf16Ops>, &gemm_entry<F32Ops>, &rms_norm_impl,   &rope_impl,
      &silu_mul_impl,       &round_bf16_impl,    &abs_max_impl,    &quantize_e4m3_impl, &kv_write_impl,   &attention_impl,
      &exp_impl,            &tile_lse_impl,      &masked_tile_lse_impl, &argmax_impl,     &exp_blocks_impl,
      &scan_greater_impl,   &masked_sums_impl,   &scan_greater_pairs_impl, &filter_greater_impl,
  };
}

}  // namespace
}  // namespace troupe
