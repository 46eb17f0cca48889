// The avx2 path's GEMM for batches and prefill (M >= kStripM rows): weights
// widened once to fp32 strips, activations packed to fp32, a 4 x 3
// register-blocked micro-kernel; and the lane helpers the avx2 Ops share.
// Included by gemm_ops_avx2.h (translation units compiled with -mavx2 -mfma
// -mf16c), inside no other namespace.
//
// What is computed is gemm_impl.h's (and, with scales, fp8/gemm_fp8_impl.h's)
// for Avx2Ops, bit for bit: per output and K segment s, lane l accumulates
// fma(x[k], w[k], acc) for k = k0 + 8c + l, chunks c in increasing order, the
// last chunk zero padded, lanes reduced by reduce_add_256; out = P_0, then
// out + P_1, ... (FP8: out + fp32(P_s * fp32(xs[m] * ws[n]))). Only where the
// operands come from differs, so every M, block and split of N gives the same
// bits as the one-row GEMV.
//
// Loop nest, per call (one thread's tile [n0, n1)):
//   for each panel of kStripPanel weight rows
//     for each K segment s
//       widen the panel's rows over s to fp32 once:  wp [rows][L8]   (L8 = L rounded up to 8)
//       for each block of 4 rows of x
//         pack them over s:                          xp [L8 / 8][4][8] fp32, chunk-interleaved
//         for each block of 3 panel rows: 12 ymm accumulators over the segment
// wp (48 x 2048 x 4 B = 384 KiB at most for the model's segments) stays in L2
// and xp (at most 32 KiB) in L1 while all the panel's blocks read them: per 8
// K, 3 loads of w and 4 of x feed 12 FMAs, with no widening in the loop.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace troupe {
namespace {

// 8 bf16 (in an xmm) -> 8 fp32.
inline __m256 widen_bf16(__m128i h) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m256 load_bf16(const uint16_t* p) {
  return widen_bf16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load_bf16_tail(const uint16_t* p, size_t n) {  // n < 8; AVX2 has no 16-bit masked load
  uint16_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(buf, p, n * sizeof(uint16_t));
  return load_bf16(buf);
}

// Halves, then pairs: ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
inline float reduce_add_256(__m256 a) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

constexpr int kStripMB = 4, kStripNB = 3;  // 12 accumulators + 3 w + 1 x of the 16 ymm
constexpr size_t kStripPanel = 48;         // weight rows widened at once (a multiple of 3)

inline size_t round_up8(size_t n) { return (n + 7) & ~size_t{7}; }

// xp[(c * kStripMB + i) * 8 + l] = x[(m0 + i) * K + k0 + 8c + l] as fp32, for i < mb;
// zero past k1.
inline void strip_pack_x(const uint16_t* x, size_t K, size_t m0, size_t mb, size_t k0, size_t k1,
                         float* xp) {
  const size_t L = k1 - k0, chunks = round_up8(L) / 8;
  for (size_t i = 0; i < mb; ++i) {
    const uint16_t* r = x + (m0 + i) * K + k0;
    size_t c = 0;
    for (; 8 * c + 8 <= L; ++c) _mm256_store_ps(xp + (c * kStripMB + i) * 8, load_bf16(r + 8 * c));
    if (c < chunks) _mm256_store_ps(xp + (c * kStripMB + i) * 8, load_bf16_tail(r + 8 * c, L - 8 * c));
  }
}

// p[i * kStripNB + j] = P for x row i of xp and strip row j of wp (row stride ldw), i < MB, j < NB.
template <int MB, int NB>
void strip_block(const float* xp, const float* wp, size_t ldw, size_t chunks, float* p) {
  __m256 acc[MB * NB];
#pragma GCC unroll 12
  for (int a = 0; a < MB * NB; ++a) acc[a] = _mm256_setzero_ps();
  for (size_t c = 0; c < chunks; ++c) {
    __m256 w[NB];
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j) w[j] = _mm256_loadu_ps(wp + j * ldw + 8 * c);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_load_ps(xp + (c * kStripMB + i) * 8);
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) acc[i * NB + j] = _mm256_fmadd_ps(xv, w[j], acc[i * NB + j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j) p[i * kStripNB + j] = reduce_add_256(acc[i * NB + j]);
}

using StripBlockFn = void (*)(const float*, const float*, size_t, size_t, float*);

template <int MB, int NB>
StripBlockFn strip_block_fn(size_t mb, size_t nb) {
  if constexpr (MB > 1) {
    if (mb < static_cast<size_t>(MB)) return strip_block_fn<MB - 1, NB>(mb, nb);
  }
  if constexpr (NB > 1) {
    if (nb < static_cast<size_t>(NB)) return strip_block_fn<MB, NB - 1>(mb, nb);
  }
  return &strip_block<MB, NB>;
}

// Per-thread buffers, grown to the largest call.
struct StripBuffers {
  std::vector<float> w, x;
  float* xp(size_t n) {
    if (x.size() < n + 8) x.resize(n + 8);
    return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(x.data()) + 31) & ~uintptr_t{31});
  }
};

// out[m * ldo + n] for m < M, n in [n0, n1) (the sum above). widen(n, k0, k1, dst) writes
// the exact fp32 values of weight row n over [k0, k1) to dst[0 .. k1 - k0). xs / ws: the FP8
// scales, or null for bf16.
template <class Widen>
void gemm_strips_avx2(const Widen& widen, const uint16_t* x, const float* xs, const float* ws,
                      float* out, size_t M, size_t n0, size_t n1, size_t ldo, size_t K,
                      size_t segments) {
  if (segments == 0) segments = 1;
  static thread_local StripBuffers buf;
  const size_t Lmax = round_up8(K / segments + 1);
  if (buf.w.size() < kStripPanel * Lmax) buf.w.resize(kStripPanel * Lmax);
  float* xp = buf.xp(kStripMB * Lmax);
  float* wp = buf.w.data();
  for (size_t p0 = n0; p0 < n1; p0 += kStripPanel) {
    const size_t np = n1 - p0 < kStripPanel ? n1 - p0 : kStripPanel;
    for (size_t s = 0; s < segments; ++s) {
      const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, L = k1 - k0;
      const size_t L8 = round_up8(L), chunks = L8 / 8;
      for (size_t j = 0; j < np; ++j) {
        widen(p0 + j, k0, k1, wp + j * L8);
        for (size_t k = L; k < L8; ++k) wp[j * L8 + k] = 0.0f;
      }
      for (size_t m0 = 0; m0 < M; m0 += kStripMB) {
        const size_t mb = M - m0 < static_cast<size_t>(kStripMB) ? M - m0 : kStripMB;
        strip_pack_x(x, K, m0, mb, k0, k1, xp);
        for (size_t j0 = 0; j0 < np; j0 += kStripNB) {
          const size_t nb = np - j0 < static_cast<size_t>(kStripNB) ? np - j0 : kStripNB;
          float p[kStripMB * kStripNB];
          strip_block_fn<kStripMB, kStripNB>(mb, nb)(xp, wp + j0 * L8, L8, chunks, p);
          for (size_t i = 0; i < mb; ++i)
            for (size_t j = 0; j < nb; ++j) {
              const size_t m = m0 + i, n = p0 + j0 + j;
              float v = p[i * kStripNB + j];
              if (xs != nullptr) {
                const float c = xs[m] * ws[n];
                v = v * c;
              }
              float& o = out[m * ldo + n];
              o = s == 0 ? v : o + v;
            }
        }
      }
    }
  }
}

// Software prefetch distance of the strip widening: rows are read one after the other, and
// the hardware prefetcher restarts at each 4 KiB page (gemm_impl.h). The last row's
// prefetches may reach past the matrix: a prefetch never faults.
constexpr size_t kStripPrefetchBytes = 2048;

// bf16 weights [N, K]: a row's K range widened by the 16-bit shift.
struct StripWidenBf16 {
  const uint16_t* w;
  size_t K;
  void operator()(size_t n, size_t k0, size_t k1, float* dst) const {
    const uint16_t* r = w + n * K;
    size_t k = k0;
    for (; k + 8 <= k1; k += 8) {
      if ((k - k0) % 32 == 0) _mm_prefetch(reinterpret_cast<const char*>(r + k) + kStripPrefetchBytes, _MM_HINT_T0);
      _mm256_storeu_ps(dst + (k - k0), load_bf16(r + k));
    }
    for (; k < k1; ++k) {
      const uint32_t b = static_cast<uint32_t>(r[k]) << 16;
      std::memcpy(dst + (k - k0), &b, sizeof b);
    }
  }
};

}  // namespace
}  // namespace troupe
