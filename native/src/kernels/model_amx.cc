// The forward pass's kernel table for the amx path: the avx512bf16 table with the bf16
// GEMM on AMX tiles (gemm_amx.h has the arithmetic and the packed layout of x).
//
// Tile registers of a block (2 x 2 tiles of 16 x 16 outputs):
//   tmm0..3  C[n-block j][m-block i] at 2 j + i   16 rows (n) x 16 fp32 (m)
//   tmm4, 5  A: w rows of n-block 0 / 1, one chunk   16 rows x 32 bf16 (K)
//   tmm6, 7  B: packed x of m-block 0 / 1, one chunk 16 pair rows x 16 (bf16 x 2)
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "kernels/gemm_amx.h"
#include "kernels/gemm_ops_avx512bf16.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {
namespace {

constexpr size_t kTile = 16;   // rows of a tile; n and m block
constexpr size_t kChunk = 32;  // K per tile product

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile 16 rows x 64 bytes (partial blocks are zero padded, never shrunk, so
// one configuration serves every shape).
void load_tile_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = kTile;
  }
  _tile_loadconfig(&cfg);
}

size_t segment_chunks(size_t K, size_t segments, size_t s) {
  const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments;
  return (k1 - k0 + kChunk - 1) / kChunk;
}

size_t total_chunks(size_t K, size_t segments) {
  size_t c = 0;
  for (size_t s = 0; s < segments; ++s) c += segment_chunks(K, segments, s);
  return c;
}

// Per-thread scratch of the kernels (zero-padded copies of partial operands).
struct AmxScratch {
  std::vector<uint16_t> rows;                 // [16, K]: the w rows of a partial n-block
  alignas(64) uint16_t tail[2][kTile * kChunk];  // [16, 32]: a chunk past a segment's end
  alignas(64) float c[4][kTile * kTile];      // C tiles of the current segment, [n][m]
  alignas(64) float sum[4][kTile * kTile];    // P_0 + ... + P_s so far, [n][m]
  std::vector<uint32_t> packed;               // gemm_bf16_amx's packed x
};

AmxScratch& scratch() {
  static thread_local AmxScratch s;
  return s;
}

// C tiles for NB n-blocks (w rows wj[j], row stride ldw elements) x MB m-blocks (packed
// blocks xb[i]) over one segment: chunks [c0, c0 + nc), K from k0 to k1.
template <int NB, int MB>
void tile_segment(const uint16_t* const* wj, size_t ldw, const uint32_t* const* xb, size_t c0, size_t nc,
                  size_t k0, size_t k1, AmxScratch& sc) {
  _tile_zero(0);
  if (MB > 1) _tile_zero(1);
  if (NB > 1) _tile_zero(2);
  if (NB > 1 && MB > 1) _tile_zero(3);
  for (size_t c = 0; c < nc; ++c) {
    const size_t k = k0 + c * kChunk;
    const uint32_t* b0 = xb[0] + (c0 + c) * kTile * kTile;
    if (k + kChunk <= k1) {
      _tile_loadd(4, wj[0] + k, ldw * 2);
      if (NB > 1) _tile_loadd(5, wj[1] + k, ldw * 2);
    } else {  // the segment's last chunk: the w elements past k1 read as zeros
      for (int j = 0; j < NB; ++j) {
        std::memset(sc.tail[j], 0, sizeof(sc.tail[j]));
        for (size_t r = 0; r < kTile; ++r) std::memcpy(sc.tail[j] + r * kChunk, wj[j] + r * ldw + k, (k1 - k) * 2);
      }
      _tile_loadd(4, sc.tail[0], kChunk * 2);
      if (NB > 1) _tile_loadd(5, sc.tail[1], kChunk * 2);
    }
    _tile_loadd(6, b0, 64);
    if (MB > 1) _tile_loadd(7, xb[1] + (c0 + c) * kTile * kTile, 64);
    _tile_dpbf16ps(0, 4, 6);
    if (MB > 1) _tile_dpbf16ps(1, 4, 7);
    if (NB > 1) _tile_dpbf16ps(2, 5, 6);
    if (NB > 1 && MB > 1) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, sc.c[0], 64);
  if (MB > 1) _tile_stored(1, sc.c[1], 64);
  if (NB > 1) _tile_stored(2, sc.c[2], 64);
  if (NB > 1 && MB > 1) _tile_stored(3, sc.c[3], 64);
}

// sum[t] = s == 0 ? c[t] : sum[t] + c[t], 16 lanes at a time (fp32 adds in segment order).
template <int NB, int MB>
void add_segment(AmxScratch& sc, size_t s) {
  for (int t = 0; t < 4; ++t) {
    if ((t >> 1) >= NB || (t & 1) >= MB) continue;
    for (size_t e = 0; e < kTile * kTile; e += 16) {
      const __m512 c = _mm512_load_ps(sc.c[t] + e);
      _mm512_store_ps(sc.sum[t] + e, s == 0 ? c : _mm512_add_ps(_mm512_load_ps(sc.sum[t] + e), c));
    }
  }
}

// out rows [16 m_block, + mb) x columns [nb0, nb0 + nb) for NB x MB blocks.
template <int NB, int MB>
void tile_block(const uint16_t* const* wj, size_t ldw, const uint32_t* packed, size_t chunks, size_t m_block,
                size_t mb, size_t nb0, size_t nb, float* out, size_t ldo, size_t K, size_t segments,
                AmxScratch& sc) {
  const uint32_t* xb[2] = {packed + m_block * chunks * kTile * kTile,
                           packed + (m_block + (MB > 1 ? 1 : 0)) * chunks * kTile * kTile};
  size_t c0 = 0;
  for (size_t s = 0; s < segments; ++s) {
    const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, nc = segment_chunks(K, segments, s);
    tile_segment<NB, MB>(wj, ldw, xb, c0, nc, k0, k1, sc);
    add_segment<NB, MB>(sc, s);
    c0 += nc;
  }
  // Transposed write: out row m takes column m of each [n][m] sum (a 16-lane gather).
  const __m512i column = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(kTile));
  for (int j = 0; j < NB; ++j) {
    const size_t nv = nb - j * kTile < kTile ? nb - j * kTile : kTile;
    const __mmask16 valid = static_cast<__mmask16>((1u << nv) - 1);
    for (int i = 0; i < MB; ++i)
      for (size_t m = 0; m < kTile && i * kTile + m < mb; ++m) {
        const __m512 row = _mm512_i32gather_ps(column, sc.sum[2 * j + i] + m, 4);
        _mm512_mask_storeu_ps(out + (m_block * kTile + i * kTile + m) * ldo + nb0 + j * kTile, valid, row);
      }
  }
}

}  // namespace

size_t amx_packed_x_words(size_t M, size_t K, size_t segments) {
  if (segments == 0) segments = 1;
  return (M + kTile - 1) / kTile * total_chunks(K, segments) * kTile * kTile;
}

void amx_pack_x(const uint16_t* xb, size_t M, size_t K, size_t segments, size_t b0, size_t b1,
                uint32_t* packed) {
  if (segments == 0) segments = 1;
  const size_t chunks = total_chunks(K, segments);
  const __m512i lane_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                  _mm512_set1_epi32(static_cast<int>(K * 2)));
  for (size_t b = b0; b < b1; ++b) {
    const size_t rows = M - b * kTile < kTile ? M - b * kTile : kTile;
    const __mmask16 valid = static_cast<__mmask16>((1u << rows) - 1);
    const uint16_t* xr = xb + b * kTile * K;
    uint32_t* dst = packed + b * chunks * kTile * kTile;
    for (size_t s = 0; s < segments; ++s) {
      const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments, nc = segment_chunks(K, segments, s);
      for (size_t c = 0; c < nc; ++c)
        for (size_t p = 0; p < kTile; ++p, dst += kTile) {
          const size_t k = k0 + c * kChunk + 2 * p;
          if (k + 2 <= k1) {  // a whole pair: one 32-bit gather over the block's rows
            _mm512_storeu_si512(dst, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, lane_offsets, xr + k, 1));
          } else {
            for (size_t i = 0; i < kTile; ++i) dst[i] = i < rows && k < k1 ? xr[i * K + k] : 0;
          }
        }
    }
  }
}

void gemm_bf16_amx_packed(const uint16_t* w, const uint32_t* packed, float* out, size_t M, size_t n0,
                          size_t n1, size_t ldo, size_t K, size_t segments) {
  if (segments == 0) segments = 1;
  if (M == 0 || n1 <= n0) return;
  AmxScratch& sc = scratch();
  load_tile_config();
  const size_t chunks = total_chunks(K, segments), m_blocks = (M + kTile - 1) / kTile;
  for (size_t nb0 = n0; nb0 < n1; nb0 += 2 * kTile) {
    const size_t nb = n1 - nb0 < 2 * kTile ? n1 - nb0 : 2 * kTile;
    const uint16_t* wj[2] = {w + nb0 * K, w + (nb0 + kTile) * K};
    // Rows past n1 may lie past the matrix: a partial n-block reads a zero-padded copy.
    const size_t last = (nb - 1) / kTile;
    if (nb % kTile != 0) {
      sc.rows.assign(kTile * K, 0);
      std::memcpy(sc.rows.data(), wj[last], (nb % kTile) * K * 2);
      wj[last] = sc.rows.data();
    }
    const bool two = nb > kTile;
    for (size_t mblk = 0; mblk < m_blocks; mblk += 2) {
      const size_t mb = M - mblk * kTile < 2 * kTile ? M - mblk * kTile : 2 * kTile;
      const bool two_m = mb > kTile;
      if (two && two_m) tile_block<2, 2>(wj, K, packed, chunks, mblk, mb, nb0, nb, out, ldo, K, segments, sc);
      else if (two) tile_block<2, 1>(wj, K, packed, chunks, mblk, mb, nb0, nb, out, ldo, K, segments, sc);
      else if (two_m) tile_block<1, 2>(wj, K, packed, chunks, mblk, mb, nb0, nb, out, ldo, K, segments, sc);
      else tile_block<1, 1>(wj, K, packed, chunks, mblk, mb, nb0, nb, out, ldo, K, segments, sc);
    }
  }
  _tile_release();
}

void gemm_bf16_amx(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t n0, size_t n1,
                   size_t ldo, size_t K, size_t segments) {
  std::vector<uint32_t>& packed = scratch().packed;
  packed.resize(amx_packed_x_words(M, K, segments));
  amx_pack_x(xb, M, K, segments, 0, (M + kTile - 1) / kTile, packed.data());
  gemm_bf16_amx_packed(w, packed.data(), out, M, n0, n1, ldo, K, segments);
}

namespace {

constexpr ModelKernels make_amx_kernels() {
  ModelKernels k = make_model_kernels<Avx512Bf16Ops, Avx512F32Ops>();
  k.gemm_bf16 = &gemm_bf16_amx;
  k.packed_x_words = &amx_packed_x_words;
  k.pack_x = &amx_pack_x;
  k.gemm_bf16_packed = &gemm_bf16_amx_packed;
  return k;
}

}  // namespace

const ModelKernels* model_kernels_amx() {
  static constexpr ModelKernels kTable = make_amx_kernels();
  return &kTable;
}

}  // namespace troupe
