// The avx2 path's GEMM for batches and prefill (M >= kStripM rows): panels
// of bf16 weight rows widened to fp32 in registers, activations packed to fp32,
// a 4 x 3 register-blocked micro-kernel; and the lane helpers the avx2 Ops share.
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
// x packed: xp [L8 / 8][4][8] fp32 per 4-row block and segment, chunk-interleaved. A
// model linear packs all of x once (linear_gemm.h, 16-row tasks over the threads) and
// every tile reads it (gemm_strips_avx2_packed); a direct call packs per group
// (gemm_strips_avx2).
//
// Loop nest, per call (one thread's tile [n0, n1)):
//   for each group of 4-row blocks of x (a batch: one group) whose packed x takes <= 1 MiB:
//   over every segment (bf16 panels, or any direct call), over the longest segment (FP8
//   panels over x packed whole: each group widens the panels again)
//     (direct call) pack the group's blocks over every segment
//     for each panel of kStripPanel weight rows
//       for each K segment s
//         the panel's rows over s as bf16: the weights in place (bf16), or widened
//         once per group into a per-thread buffer (FP8 codes)
//         for each block of the group
//           for each block of 3 panel rows: 12 ymm accumulators over the segment
// Per 8 K the micro-kernel issues 3 broadcast loads of 8 bf16 (one per weight
// row), 3 byte shuffles that put each bf16 in the top half of its fp32 lane
// (the shuffle port only: the FMA ports do nothing but FMAs), 4 loads of x and
// 12 FMAs: 16 ymm registers (12 accumulators, 3 weights, 1 x), the shuffle's
// control reloaded from L1 each chunk. A panel (48 x 2048 x 2 B = 192 KiB for
// the model's segments) stays in L2 while the group's blocks read it, one block's
// xp over a segment (<= 32 KiB for K <= 2048 a segment) in L1 after its first
// read. The group's first m-block, which brings the panel from memory, prefetches the
// next block's 3 rows at the offsets it reads: the hardware prefetcher starts
// over at each 4 KiB page, one row of a K = 2048 matrix.
#pragma once

#include <immintrin.h>

#include <algorithm>
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

// out[i] = reduce_add_256(a[i]) for i < 8, the same additions on 8 accumulators at once:
// 128-bit halves added (a[i] and a[i + 4] share a register), then the pairs, then the
// last pair, each step one vector add.
inline void reduce8_add_256(const __m256* a, float* out) {
  __m256 u[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // [x0 + x4 .. x3 + x7] of a[i] (low lane) and a[i + 4] (high lane)
    u[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[i], a[i + 4], 0x20), _mm256_permute2f128_ps(a[i], a[i + 4], 0x31));
  // [u0 + u2, u1 + u3] of two accumulators per lane
  const __m256 v0 = _mm256_add_ps(_mm256_shuffle_ps(u[0], u[1], 0x44), _mm256_shuffle_ps(u[0], u[1], 0xee));
  const __m256 v1 = _mm256_add_ps(_mm256_shuffle_ps(u[2], u[3], 0x44), _mm256_shuffle_ps(u[2], u[3], 0xee));
  // [v0 + v1] of a[0..3] (low lane) and a[4..7] (high lane)
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_shuffle_ps(v0, v1, 0x88), _mm256_shuffle_ps(v0, v1, 0xdd)));
}

constexpr int kStripMB = 4, kStripNB = 3;  // 12 accumulators + 3 w + 1 x of the 16 ymm
constexpr size_t kStripPanel = 48;         // weight rows per panel (a multiple of 3)
constexpr size_t kStripXGroupBytes = 1 << 20;  // packed x of one group of m-blocks (gemm_strips_avx2)

inline size_t round_up8(size_t n) { return (n + 7) & ~size_t{7}; }

// pshufb control: dword i of each 128-bit lane takes bytes 2i', 2i' + 1 of the
// broadcast 8 bf16 (i' = i in the low lane, 4 + i in the high one) into its
// top half and zeroes the bottom half: 8 bf16 -> their fp32 values, K order.
alignas(32) inline constexpr int8_t kBf16SpreadControl[32] = {
    -1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7,
    -1, -1, 8, 9, -1, -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15};

inline __m256 spread_bf16(const uint16_t* p, __m256i control) {
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_shuffle_epi8(b, control));
}

// xp[(c * kStripMB + i) * 8 + l] = x[(m0 + i) * K + k0 + 8c + l] as fp32, for i < mb;
// zero past k1.
inline void strip_pack_x(const uint16_t* x, size_t K, size_t m0, size_t mb, size_t k0, size_t k1,
                         float* xp) {
  const size_t L = k1 - k0, chunks = round_up8(L) / 8, whole = L / 8;
  // Chunk by chunk across the rows: xp is written in order, the rows read as mb streams.
  const uint16_t* r = x + m0 * K + k0;
  for (size_t c = 0; c < whole; ++c)
    for (size_t i = 0; i < mb; ++i) _mm256_store_ps(xp + (c * kStripMB + i) * 8, load_bf16(r + i * K + 8 * c));
  if (whole < chunks)
    for (size_t i = 0; i < mb; ++i) _mm256_store_ps(xp + (whole * kStripMB + i) * 8, load_bf16_tail(r + i * K + 8 * whole, L - 8 * whole));
}

// p[i * kStripNB + j] = P for x row i of xp and bf16 weight row j at w + j * ldw (the
// segment's first K), i < MB, j < NB, over `chunks` whole chunks and a zero-padded tail of
// `tail` (< 8) K. next: the next block's rows (same stride), prefetched at the offsets read
// here, or null.
template <int MB, int NB>
void strip_block(const float* xp, const uint16_t* w, size_t ldw, size_t chunks, size_t tail,
                 const uint16_t* next, float* p) {
  __m256 acc[MB * NB];
#pragma GCC unroll 12
  for (int a = 0; a < MB * NB; ++a) acc[a] = _mm256_setzero_ps();
  for (size_t c = 0; c < chunks; ++c) {
    if (next != nullptr && c % 4 == 0) {  // one 64-byte line of each row per 4 chunks
#pragma GCC unroll 3
      for (int j = 0; j < kStripNB; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(next + j * ldw + 8 * c), _MM_HINT_T0);
    }
    // Reloaded from L1 per chunk (volatile): held in a register it would push x out of one.
    const __m256i control = *reinterpret_cast<const volatile __m256i*>(kBf16SpreadControl);
    __m256 wv[NB];
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j) wv[j] = spread_bf16(w + j * ldw + 8 * c, control);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_load_ps(xp + (c * kStripMB + i) * 8);
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) acc[i * NB + j] = _mm256_fmadd_ps(xv, wv[j], acc[i * NB + j]);
    }
  }
  if (tail != 0) {
    __m256 wv[NB];
#pragma GCC unroll 3
    for (int j = 0; j < NB; ++j) wv[j] = load_bf16_tail(w + j * ldw + 8 * chunks, tail);
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_load_ps(xp + (chunks * kStripMB + i) * 8);
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) acc[i * NB + j] = _mm256_fmadd_ps(xv, wv[j], acc[i * NB + j]);
    }
  }
  if constexpr (MB * NB >= 8) {
    float r[16];
    reduce8_add_256(acc, r);
    if constexpr (MB * NB > 8) {
      __m256 rest[8];
#pragma GCC unroll 8
      for (int a = 0; a < 8; ++a) rest[a] = 8 + a < MB * NB ? acc[8 + a] : _mm256_setzero_ps();
      reduce8_add_256(rest, r + 8);
    }
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) p[i * kStripNB + j] = r[i * NB + j];
  } else {
#pragma GCC unroll 4
    for (int i = 0; i < MB; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < NB; ++j) p[i * kStripNB + j] = reduce_add_256(acc[i * NB + j]);
  }
}

using StripBlockFn = void (*)(const float*, const uint16_t*, size_t, size_t, size_t, const uint16_t*, float*);

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

// out[m * ldo + n] for the block's rows m0 .. m0 + mb and columns n0 .. n0 + nb: P (p, rows
// kStripNB apart), times xs[m] * ws[n] for FP8, stored on the first segment and added after.
// NB: the block's width when fixed (a whole block: the compiler unrolls the row into scalar
// stores, where a variable width becomes a call to memcpy per row), 0 for the width nb.
template <size_t NB>
inline void strip_store(const float* p, const float* xs, const float* ws, float* out, size_t ldo, size_t m0,
                        size_t mb, size_t n0, bool first, size_t nb = NB) {
  const size_t width = NB != 0 ? NB : nb;
  for (size_t i = 0; i < mb; ++i) {
    const size_t m = m0 + i;
    float* o = out + m * ldo + n0;
    const float* r = p + i * kStripNB;
    for (size_t j = 0; j < width; ++j) {
      const float v = xs != nullptr ? r[j] * (xs[m] * ws[n0 + j]) : r[j];
      o[j] = first ? v : o[j] + v;
    }
  }
}

// Per-thread activation buffer, grown to the largest call: xp, 32-byte aligned.
inline float* strip_x_buffer(size_t n) {
  static thread_local std::vector<float> x;
  if (x.size() < n + 8) x.resize(n + 8);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(x.data()) + 31) & ~uintptr_t{31});
}

// The packed x: m-block b (kStripMB rows of x) over segment s at
// kStripMB * (b * K8 + S8(s)) floats, K8 the sum of the segments' chunk-rounded lengths and
// S8(s) that of the segments before s; each block and segment as strip_pack_x writes it.
struct StripXLayout {
  size_t K, segments, K8, mblocks, block_floats;
  size_t segment_floats;  // one m-block over the longest segment
  StripXLayout(size_t M, size_t K_, size_t segments_)
      : K(K_), segments(segments_ == 0 ? 1 : segments_), K8(0), segment_floats(0) {
    for (size_t s = 0; s < segments; ++s) {
      const size_t L8 = round_up8(K * (s + 1) / segments - K * s / segments);
      K8 += L8;
      segment_floats = std::max(segment_floats, kStripMB * L8);
    }
    mblocks = (M + kStripMB - 1) / kStripMB;
    block_floats = kStripMB * K8;
  }
  size_t floats() const { return mblocks * block_floats; }
};

// m-blocks [b0, b1) of x's M rows packed, block b at xp + (b - b0) * block_floats.
inline void strip_pack_blocks(const StripXLayout& lay, const uint16_t* x, size_t M, size_t b0, size_t b1, float* xp) {
  for (size_t b = b0; b < b1; ++b) {
    const size_t m0 = b * kStripMB, mb = std::min<size_t>(M - m0, kStripMB);
    for (size_t s = 0, s8 = 0; s < lay.segments; ++s) {
      const size_t k0 = lay.K * s / lay.segments, k1 = lay.K * (s + 1) / lay.segments;
      strip_pack_x(x, lay.K, m0, mb, k0, k1, xp + (b - b0) * lay.block_floats + kStripMB * s8);
      s8 += round_up8(k1 - k0);
    }
  }
}

// The outputs of m-blocks [g0, g1) (packed at xg, block g0 first) for columns [n0, n1):
// every panel of the tile, each read by every block of the group.
template <class Panels>
void strip_group(Panels& panels, const StripXLayout& lay, const float* xg, size_t g0, size_t g1, const float* xs,
                 const float* ws, float* out, size_t M, size_t n0, size_t n1, size_t ldo) {
  const size_t K = lay.K, segments = lay.segments;
  for (size_t p0 = n0; p0 < n1; p0 += kStripPanel) {
    const size_t np = std::min(n1 - p0, kStripPanel);
    for (size_t s = 0, s8 = 0; s < segments; ++s) {
      const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, L = k1 - k0;
      size_t ld = 0;
      const uint16_t* wp = panels.rows(p0, np, k0, k1, ld);
      for (size_t b = g0; b < g1; ++b) {
        const size_t m0 = b * kStripMB, mb = std::min<size_t>(M - m0, kStripMB);
        const float* xp = xg + (b - g0) * lay.block_floats + kStripMB * s8;
        for (size_t j0 = 0; j0 < np; j0 += kStripNB) {
          const size_t nb = std::min<size_t>(np - j0, kStripNB);
          const bool pf = Panels::kInPlace && b == g0 && j0 + 2 * kStripNB <= np;
          const uint16_t* next = pf ? wp + (j0 + kStripNB) * ld : nullptr;
          float p[kStripMB * kStripNB];
          strip_block_fn<kStripMB, kStripNB>(mb, nb)(xp, wp + j0 * ld, ld, L / 8, L % 8, next, p);
          if (nb == kStripNB)
            strip_store<kStripNB>(p, xs, ws, out, ldo, m0, mb, p0 + j0, s == 0);
          else
            strip_store<0>(p, xs, ws, out, ldo, m0, mb, p0 + j0, s == 0, nb);
        }
      }
      s8 += round_up8(L);
    }
  }
}

// m-blocks per group: block_floats per m-block counted against kStripXGroupBytes (a batch:
// one group).
inline size_t strip_group_blocks(const StripXLayout& lay, size_t block_floats) {
  return std::max<size_t>(1, std::min(lay.mblocks, kStripXGroupBytes / (block_floats * sizeof(float))));
}

// out[m * ldo + n] for m < M, n in [n0, n1) (the sum above). Panels: a source of bf16 panel
// rows with
//   const uint16_t* rows(p0, np, k0, k1, size_t& ld)   rows [p0, p0 + np) over [k0, k1):
//                        row j at the result + j * ld, the exact bf16 of each weight
//   static constexpr bool kInPlace   whether those rows are the weights in memory (the
//                        group's first m-block then prefetches the next block's rows)
// xs / ws: the FP8 scales, or null for bf16. x is packed here, one group at a time.
template <class Panels>
void gemm_strips_avx2(Panels& panels, const uint16_t* x, const float* xs, const float* ws, float* out,
                      size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  const StripXLayout lay(M, K, segments);
  const size_t group = strip_group_blocks(lay, lay.block_floats);
  float* xg = strip_x_buffer(group * lay.block_floats);
  for (size_t g0 = 0; g0 < lay.mblocks; g0 += group) {
    const size_t g1 = std::min(lay.mblocks, g0 + group);
    strip_pack_blocks(lay, x, M, g0, g1, xg);
    strip_group(panels, lay, xg, g0, g1, xs, ws, out, M, n0, n1, ldo);
  }
}

// The same over x packed whole beforehand (strip_pack_blocks over every m-block, at xp).
template <class Panels>
void gemm_strips_avx2_packed(Panels& panels, const float* xp, const float* xs, const float* ws, float* out,
                             size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  const StripXLayout lay(M, K, segments);
  const size_t group = strip_group_blocks(lay, Panels::kInPlace ? lay.block_floats : lay.segment_floats);
  for (size_t g0 = 0; g0 < lay.mblocks; g0 += group)
    strip_group(panels, lay, xp + g0 * lay.block_floats, g0, std::min(lay.mblocks, g0 + group), xs, ws, out, M, n0,
                n1, ldo);
}

// x packed whole for gemm_strips_avx2_packed, in the uint32 words of a caller's buffer
// (ModelKernels::pack_x, Fp8Kernels::pack_x): StripXLayout's floats from the buffer's first
// 32-byte boundary (the kernel's aligned loads); a row block of 16 rows is 16 / kStripMB
// m-blocks.
static_assert(16 % kStripMB == 0, "a pack_x row block is whole m-blocks");
inline float* strip_packed_floats(const uint32_t* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 31) & ~uintptr_t{31});
}
inline size_t strip_packed_x_words(size_t M, size_t K, size_t segments) {
  return StripXLayout(M, K, segments).floats() + 8;
}
inline void strip_pack_x_rows(const uint16_t* x, size_t M, size_t K, size_t segments, size_t b0, size_t b1,
                              uint32_t* packed) {
  constexpr size_t kBlocks = 16 / kStripMB;
  const StripXLayout lay(M, K, segments);
  const size_t mb0 = b0 * kBlocks, mb1 = std::min(lay.mblocks, b1 * kBlocks);
  strip_pack_blocks(lay, x, M, mb0, mb1, strip_packed_floats(packed) + mb0 * lay.block_floats);
}

// bf16 weights [N, K]: the panel is the rows in place.
struct StripPanelsBf16 {
  static constexpr bool kInPlace = true;
  const uint16_t* w;
  size_t K;
  const uint16_t* rows(size_t p0, size_t, size_t k0, size_t, size_t& ld) const {
    ld = K;
    return w + p0 * K + k0;
  }
};

}  // namespace
}  // namespace troupe
