// The bf16 model GEMM on AMX tiles (src/kernels/model_amx.cc; compiled with the amx flags).
//
// What is computed is gemm_impl.h's contract, out[m, n] = P_0 + ... + P_{S-1} added left
// to right in fp32, with each P_s in the tile product's own arithmetic:
//   P_s = one fp32 accumulator per (n, m), TDPBF16PS over K chunks of 32 in increasing
//         order (each chunk: its 16 pairs (k, k+1) in the instruction's order), the
//         segment's last chunk zero padded.
// Every output's operations depend only on w row n, x row m, K and S: not on M, on
// the [n0, n1) split, on the block of rows or columns it shares a tile with, nor on
// whether x was packed per call or per tile. They differ from vdpbf16ps's (16 lanes,
// then a lane tree), so the amx path is an ISA of its own (isa.h).
//
// Operands: A = 16 rows of w as stored ([N, K] bf16, a row's 32 K of a chunk in a tile
// row), B = x packed in the pair layout the instruction reads, C[n][m] fp32.
//
// Packed x, per block b of 16 rows of x (rows past M are zeros), per segment s, per
// chunk c of 32 K from the segment's start k0_s (C = sum over s of ceil(len_s / 32)
// chunks in all), a 16 x 16 tile of uint32 words:
//   packed[((b * C + chunk) * 16 + p) * 16 + i] = x[16 b + i][k] | x[16 b + i][k + 1] << 16,
//   k = k0_s + 32 c + 2 p; elements at or past the segment's end are zero.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {

size_t amx_packed_x_words(size_t M, size_t K, size_t segments);
void amx_pack_x(const uint16_t* xb, size_t M, size_t K, size_t segments, size_t b0, size_t b1,
                uint32_t* packed);
void gemm_bf16_amx_packed(const uint16_t* w, const uint32_t* packed, float* out, size_t M, size_t n0,
                          size_t n1, size_t ldo, size_t K, size_t segments);
// Packs x itself (into a buffer of the calling thread), then gemm_bf16_amx_packed.
void gemm_bf16_amx(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t n0, size_t n1,
                   size_t ldo, size_t K, size_t segments);

}  // namespace troupe
