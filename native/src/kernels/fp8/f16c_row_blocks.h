// The avx2 FP8 weight layout and the kernels that read it: the F16C recoding of
// each full chunk (gemm_fp8_ops_f16c.h), and the rows of every block of four
// interleaved chunk by chunk, so that a 1 x 4 register block reads one
// sequential stream instead of four rows a K apart. Included only by
// src/kernels/gemm_fp8_avx2.cc, after gemm_fp8_ops_f16c.h and gemm_fp8_impl.h.
//
// Layout of a [rows, K] array. Block b holds rows 4b .. 4b + n - 1, n = min(4,
// rows - 4b), in the n K bytes from w + 4bK. Within a block, K segment s =
// [k0, k1) takes the bytes [n k0, n k1): first its full 32-code chunks, row p's
// chunk at K index k (on the segment's chunk grid) at n k + 32 p, then the
// segment's tail codes (kt = k0 + 32 floor((k1 - k0) / 32) to k1), row by row:
// row p's code k at n kt + p (k1 - kt) + (k - kt).
//
//   n = 4, one segment, K = 96:   r0c0 r1c0 r2c0 r3c0 | r0c1 r1c1 r2c1 r3c1 | r0c2 ... r3c2
//                                 (each cN 32 recoded codes)
//
// A block of one row is row layout. Every block starts a whole multiple of 4
// rows from the array's first, so a view of rows from a multiple of 4 (a
// vocabulary tile, a thread's tile of N) is an array of this layout itself, of
// its remaining rows. Each code's value and its place in K order are unchanged: the
// arithmetic is gemm_fp8_impl.h's, bit for bit (only the addresses differ).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace troupe {
namespace {

struct F16cRowBlocks {
  static constexpr size_t kRows = 4;
  static constexpr size_t kChunk = Fp8F16cOps::kChunk;
  // Bytes ahead in a block's stream (the blocks follow each other: one stream per call).
  static constexpr size_t kPrefetchAhead = 4096;

  static size_t block_rows(size_t b, size_t rows) { return std::min(kRows, rows - kRows * b); }
  // The end of segment [k0, k1)'s full chunks.
  static size_t full_end(size_t k0, size_t k1) { return k0 + (k1 - k0) / kChunk * kChunk; }
  // From the block's first byte, for a block of n rows: row p's full chunk at k, and its
  // tail code k of a segment whose full chunks end at kt.
  static size_t chunk_at(size_t n, size_t p, size_t k) { return n * k + kChunk * p; }
  static size_t tail_at(size_t n, size_t p, size_t kt, size_t k1, size_t k) { return n * kt + p * (k1 - kt) + (k - kt); }

  // Codes [rows, K] in K order -> this layout (each full chunk recoded), in place.
  static void prepack(uint8_t* w, size_t rows, size_t K, size_t segments) {
    if (segments == 0) segments = 1;
    gemm_fp8_prepack<Fp8F16cOps>(w, rows, K, segments);
    std::vector<uint8_t> t(kRows * K);
    for (size_t b = 0; kRows * b < rows; ++b) {
      const size_t n = block_rows(b, rows);
      if (n == 1) continue;
      uint8_t* blk = w + kRows * b * K;
      for (size_t s = 0; s < segments; ++s) {
        const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, kt = full_end(k0, k1);
        for (size_t p = 0; p < n; ++p) {
          const uint8_t* row = blk + p * K;
          for (size_t k = k0; k < kt; k += kChunk) std::memcpy(&t[chunk_at(n, p, k)], row + k, kChunk);
          if (kt < k1) std::memcpy(&t[tail_at(n, p, kt, k1, kt)], row + kt, k1 - kt);
        }
      }
      std::memcpy(blk, t.data(), n * K);
    }
  }
};

// out[i * ldo + j] for i < MB, j < NB: rows p0 .. p0 + NB - 1 of a block of n rows at blk,
// gemm_fp8_block's arithmetic (gemm_fp8_impl.h) on this layout. pf: prefetch the stream
// ahead (the first m-block; rows at even places prefetch, so each 64-byte line is asked once).
template <int MB, int NB>
void f16c_block(const uint8_t* blk, size_t n, size_t p0, const float* x, size_t K, size_t segments, const float* xs,
                const float* ws, float* out, size_t ldo, bool pf) {
  using Ops = Fp8F16cOps;
  using L = F16cRowBlocks;
  float c[MB * NB];
  fp8_block_scales<MB, NB>(xs, ws, c);
  const uint8_t* rows = blk + L::kChunk * p0;  // row p0 + j's chunk at k: rows + n k + 32 j
  for (size_t s = 0; s < segments; ++s) {
    const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, kt = L::full_end(k0, k1);
    Ops::Acc acc[MB * NB];
#pragma GCC unroll 32
    for (int a = 0; a < MB * NB; ++a) acc[a] = Ops::zero();
    for (size_t k = k0; k < kt; k += L::kChunk) {
      const uint8_t* at = rows + n * k;
      Ops::WVec wv[NB];
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w(at + L::kChunk * j);
      if (pf) {
#pragma GCC unroll 16
        for (int j = 0; j < NB; ++j)
          if ((p0 + j) % 2 == 0) Ops::prefetch(at + L::kChunk * j + L::kPrefetchAhead);
      }
#pragma GCC unroll 16
      for (int i = 0; i < MB; ++i) {
        const Ops::XVec xv = Ops::load_x(x + i * K + k);
#pragma GCC unroll 16
        for (int j = 0; j < NB; ++j) acc[i * NB + j] = Ops::dot(acc[i * NB + j], xv, wv[j]);
      }
    }
    if (kt < k1) {  // tail: the same dot on a zero-padded chunk
      const size_t len = k1 - kt;
      Ops::WVec wv[NB];
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w_tail(blk + L::tail_at(n, p0 + j, kt, k1, kt), len);
      fp8_tail_dot<Ops, MB, NB>(acc, wv, x, K, kt, len);
    }
    fp8_segment_out<Ops, MB, NB>(acc, c, s, out, ldo);
  }
}

using F16cBlockFn = void (*)(const uint8_t*, size_t, size_t, const float*, size_t, size_t, const float*, const float*,
                             float*, size_t, bool);

template <int MB, int NB>
F16cBlockFn f16c_block_fn(size_t mb, size_t nb) {
  if constexpr (MB > 1) {
    if (mb < static_cast<size_t>(MB)) return f16c_block_fn<MB - 1, NB>(mb, nb);
  }
  if constexpr (NB > 1) {
    if (nb < static_cast<size_t>(NB)) return f16c_block_fn<MB, NB - 1>(mb, nb);
  }
  return &f16c_block<MB, NB>;
}

// Rows [n0, n1) of the [rows, K] array w, MB x NB blocks (NB <= 4) inside each row block,
// m-blocks innermost (a block's codes read from memory once per call).
template <int MB, int NB>
void f16c_blocks(const uint8_t* w, size_t rows, const float* x, const float* xs, const float* ws, float* out,
                 size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  using L = F16cRowBlocks;
  for (size_t b = n0 / L::kRows; L::kRows * b < n1; ++b) {
    const size_t first = L::kRows * b, n = L::block_rows(b, rows);
    const size_t r0 = std::max(n0, first), r1 = std::min(n1, first + n);
    for (size_t r = r0; r < r1; r += NB) {
      const size_t nb = std::min<size_t>(NB, r1 - r);
      for (size_t m0 = 0; m0 < M; m0 += MB) {
        const size_t mb = std::min<size_t>(MB, M - m0);
        f16c_block_fn<MB, NB>(mb, nb)(w + first * K, n, r - first, x + m0 * K, K, segments, xs + m0, ws + r,
                                      out + m0 * ldo + r, ldo, m0 == 0);
      }
    }
  }
}

// Rows [p0, p0 + np) over segment [k0, k1) as exact bf16 bits, row j at out + j * ld: each
// block's stream read once, its rows widened chunk by chunk (Fp8F16cOps::widen_chunk_bf16).
inline void f16c_widen_rows(const uint8_t* w, size_t rows, size_t K, size_t p0, size_t np, size_t k0, size_t k1,
                            uint16_t* out, size_t ld) {
  using L = F16cRowBlocks;
  const size_t kt = L::full_end(k0, k1);
  for (size_t b = p0 / L::kRows; L::kRows * b < p0 + np; ++b) {
    const size_t first = L::kRows * b, n = L::block_rows(b, rows);
    const size_t r0 = std::max(p0, first), r1 = std::min(p0 + np, first + n);
    const uint8_t* blk = w + first * K;
    for (size_t k = k0; k < kt; k += L::kChunk) {
      for (size_t q = 0; q < n * L::kChunk; q += 64) Fp8F16cOps::prefetch(blk + n * k + q + L::kPrefetchAhead);
      for (size_t r = r0; r < r1; ++r)
        Fp8F16cOps::widen_chunk_bf16(blk + L::chunk_at(n, r - first, k), out + (r - p0) * ld + (k - k0));
    }
    for (size_t r = r0; r < r1; ++r) {
      const uint8_t* tail = blk + L::tail_at(n, r - first, kt, k1, kt);
      for (size_t k = kt; k < k1; ++k) out[(r - p0) * ld + (k - k0)] = kE4m3Bf16[tail[k - kt]];
    }
  }
}

}  // namespace
}  // namespace troupe
