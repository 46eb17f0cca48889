// The model GEMM, written once and instantiated by each ISA translation unit
// (src/kernels/model_<isa>.cc) with that ISA's Ops (src/kernels/gemm_ops_<isa>.h).
// Private to each TU for the same reason as matmul_bf16_impl.h: include it
// after the ISA's Ops header, inside no other namespace.
//
// Ops contract (one struct per ISA and weight type):
//   Elem                     element type of w and x (uint16_t bf16 bits, or float)
//   Acc                      fp32 accumulator vector
//   XVec, WVec               one K-chunk of x / w, in the form dot() consumes
//   kChunk                   K elements one dot() consumes
//   kMB, kNB                 register block: rows of x by rows of w per micro-kernel
//   zero(), load_x(p), load_w(p), load_x_tail(p, n), load_w_tail(p, n), dot(acc, x, w), reduce(acc)
//
// What is computed, for n in [n0, n1) and every m < M:
//   out[m * ldo + n] = P_0 + P_1 + ... + P_{S-1}      (added left to right, in fp32)
//   P_s = sum over k in [K*s/S, K*(s+1)/S) of x[m * K + k] * w[n * K + k]
// S = `segments`. Each P_s is one accumulator per output, K consumed in kChunk
// steps in increasing order (the tail chunk zero padded), lanes reduced in a
// fixed tree: the same instruction sequence for every M, every [n0, n1) split
// and every blocking, so a row's result never depends on the rest of the batch
// or on how threads divide N. Row-parallel layers (o_proj, down_proj) use
// S = 8 so that a tensor-parallel split of K over 1, 2, 4 or 8 ranks can
// reproduce the same sum bit for bit.
//
// Loop order: n-blocks outside, m-blocks inside, so a block of kNB weight rows
// is read from memory once per call and reused for the whole batch.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {
namespace {

// out[i * ldo + j] (i < MB, j < NB) = partial dot over klen elements.
//   w  points at w[n0, k0] (row stride ldk), x at x[m0, k0] (row stride ldk)
template <class Ops, int MB, int NB>
void gemm_block(const typename Ops::Elem* w, const typename Ops::Elem* x, size_t ldk,
                size_t klen, float* out, size_t ldo) {
  typename Ops::Acc acc[MB][NB];
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) acc[i][j] = Ops::zero();

  size_t k = 0;
  for (; k + Ops::kChunk <= klen; k += Ops::kChunk) {
    typename Ops::WVec wv[NB];
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w(w + j * ldk + k);
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const typename Ops::XVec xv = Ops::load_x(x + i * ldk + k);
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) acc[i][j] = Ops::dot(acc[i][j], xv, wv[j]);
    }
  }
  if (k < klen) {  // tail: same dot on a zero-padded chunk
    const size_t n = klen - k;
    typename Ops::WVec wv[NB];
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w_tail(w + j * ldk + k, n);
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i) {
      const typename Ops::XVec xv = Ops::load_x_tail(x + i * ldk + k, n);
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) acc[i][j] = Ops::dot(acc[i][j], xv, wv[j]);
    }
  }

#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) out[i * ldo + j] = Ops::reduce(acc[i][j]);
}

template <class Ops>
using GemmBlockFn = void (*)(const typename Ops::Elem*, const typename Ops::Elem*, size_t,
                             size_t, float*, size_t);

// The micro-kernel for an mb x nb block (1 <= mb <= MB, 1 <= nb <= NB).
template <class Ops, int MB, int NB>
GemmBlockFn<Ops> gemm_block_fn(size_t mb, size_t nb) {
  if constexpr (MB > 1) {
    if (mb < static_cast<size_t>(MB)) return gemm_block_fn<Ops, MB - 1, NB>(mb, nb);
  }
  if constexpr (NB > 1) {
    if (nb < static_cast<size_t>(NB)) return gemm_block_fn<Ops, MB, NB - 1>(mb, nb);
  }
  return &gemm_block<Ops, MB, NB>;
}

template <class Ops>
void gemm_run(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
              size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  constexpr size_t MB = Ops::kMB, NB = Ops::kNB;
  if (segments == 0) segments = 1;
  float partial[MB * NB];
  for (size_t nb0 = n0; nb0 < n1; nb0 += NB) {
    const size_t nb = n1 - nb0 < NB ? n1 - nb0 : NB;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
      const size_t mb = M - m0 < MB ? M - m0 : MB;
      const GemmBlockFn<Ops> block = gemm_block_fn<Ops, Ops::kMB, Ops::kNB>(mb, nb);
      float* o = out + m0 * ldo + nb0;
      for (size_t s = 0; s < segments; ++s) {
        const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments;
        const typename Ops::Elem* ws = w + nb0 * K + k0;
        const typename Ops::Elem* xs = x + m0 * K + k0;
        if (s == 0) {
          block(ws, xs, K, k1 - k0, o, ldo);
        } else {
          block(ws, xs, K, k1 - k0, partial, NB);
          for (size_t i = 0; i < mb; ++i)
            for (size_t j = 0; j < nb; ++j) o[i * ldo + j] = o[i * ldo + j] + partial[i * NB + j];
        }
      }
    }
  }
}

}  // namespace
}  // namespace troupe
