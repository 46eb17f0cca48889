// The bf16 matmul algorithm, written once and instantiated by each ISA
// translation unit (src/kernels/matmul_bf16_<isa>.cc) with that ISA's Ops.
//
// Everything here sits in an anonymous namespace on purpose: each TU is built
// with different -m flags, and its instantiations must stay private to it (a
// shared weak symbol could let the linker hand AVX-512 code to the AVX2 path).
// For the same reason this header uses no std:: templates that could be
// emitted out of line. Include it after the ISA's intrinsics header.
//
// Ops contract (one struct per ISA):
//   Acc                      fp32 accumulator vector
//   XVec, WVec               one K-chunk of x / w, in the form dot() consumes
//   kChunk                   K elements one dot() consumes
//   kMB, kNB                 register block: rows of x by rows of w per micro-kernel
//   zero()                   all-zero Acc
//   load_x(p), load_w(p)     read kChunk bf16 values at p
//   load_x_tail(p, n), load_w_tail(p, n)
//                            read n < kChunk values, the other lanes are +0
//   dot(acc, x, w)           acc + x * w lane-wise (rounding fixed per ISA)
//   reduce(acc)              lanes -> one float in a fixed tree order
//
// Loop order: n-blocks outside, m-blocks inside, so a block of kNB weight rows
// (kNB * K * 2 bytes) is read from memory once and reused for the whole batch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/matmul_bf16.h"

namespace troupe {
namespace {

// out[i, j] (i < MB, j < NB) for x rows xb[0..MB), w rows w[0..NB).
//   w    points at row n0 of w [N, K]
//   xb   points at row m0 of xb [M, K]
//   out  points at out[m0, n0] of out [M, N]; ldo = N
template <class Ops, int MB, int NB>
void matmul_bf16_block(const uint16_t* w, const uint16_t* xb, float* out, size_t ldo,
                       size_t K) {
  typename Ops::Acc acc[MB][NB];
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) acc[i][j] = Ops::zero();

  size_t k = 0;
  for (; k + Ops::kChunk <= K; k += Ops::kChunk) {
    typename Ops::WVec wv[NB];
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w(w + j * K + k);
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const typename Ops::XVec xv = Ops::load_x(xb + i * K + k);
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) acc[i][j] = Ops::dot(acc[i][j], xv, wv[j]);
    }
  }
  if (k < K) {  // tail: same dot on a zero-padded chunk
    const size_t n = K - k;
    typename Ops::WVec wv[NB];
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w_tail(w + j * K + k, n);
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const typename Ops::XVec xv = Ops::load_x_tail(xb + i * K + k, n);
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) acc[i][j] = Ops::dot(acc[i][j], xv, wv[j]);
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) out[i * ldo + j] = Ops::reduce(acc[i][j]);
}

using MatmulBf16BlockFn = void (*)(const uint16_t*, const uint16_t*, float*, size_t, size_t);

// The micro-kernel for an mb x nb block (1 <= mb <= MB, 1 <= nb <= NB).
template <class Ops, int MB, int NB>
MatmulBf16BlockFn matmul_bf16_block_fn(size_t mb, size_t nb) {
  if constexpr (MB > 1) {
    if (mb < static_cast<size_t>(MB)) return matmul_bf16_block_fn<Ops, MB - 1, NB>(mb, nb);
  }
  if constexpr (NB > 1) {
    if (nb < static_cast<size_t>(NB)) return matmul_bf16_block_fn<Ops, MB, NB - 1>(mb, nb);
  }
  return &matmul_bf16_block<Ops, MB, NB>;
}

template <class Ops>
void matmul_bf16_run(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                     size_t K) {
  constexpr size_t MB = Ops::kMB, NB = Ops::kNB;
  for (size_t n0 = 0; n0 < N; n0 += NB) {
    const size_t nb = N - n0 < NB ? N - n0 : NB;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
      const size_t mb = M - m0 < MB ? M - m0 : MB;
      const MatmulBf16BlockFn block = matmul_bf16_block_fn<Ops, Ops::kMB, Ops::kNB>(mb, nb);
      block(w + n0 * K, xb + m0 * K, out + m0 * N + n0, N, K);
    }
  }
}

}  // namespace
}  // namespace troupe
