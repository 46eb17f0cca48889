// The FP8 linear's GEMM, written once and instantiated by each ISA's
// translation unit (src/kernels/gemm_fp8_<isa>.cc) with an FP8 Ops struct
// (src/fp8/gemm_fp8_ops_*.h). Include after the Ops header, inside no other
// namespace (each TU keeps a private copy, as gemm_impl.h).
//
// Inputs:
//   w   [N, K] e4m3 codes (1 byte per weight, resident as stored)
//   ws  [N]    per-output-channel weight scales (a per-tensor scale arrives repeated)
//   xq  [M, K] the activations already quantized to e4m3 values, held as bf16
//              bits (exact: kernels/fp8/e4m3.h), row m quantized with scale xs[m]
// What is computed, for n in [n0, n1) and every m < M:
//   c      = fp32(xs[m] * ws[n])
//   P_s    = sum over K segment s of xq[m, k] * w[n, k]      (as gemm_impl.h)
//   out[m * ldo + n] = fp32(P_0 * c) + fp32(P_1 * c) + ... + fp32(P_{S-1} * c)   left to right
// Each P_s is produced by exactly the instruction sequence the ISA's bf16 GEMM
// uses (e4m3 weights are widened to their bf16 bits in registers and fed to
// the same dot / reduce), so P_s equals the bf16 GEMM of the dequantized-to-
// bf16 codes bit for bit (test/native/fp8-gemm.test.ts checks this on every
// ISA). Scaling each segment's partial before the sum keeps the row-parallel
// layers' 8-segment structure: a tensor-parallel split of K can reproduce the
// same additions. Row m of out depends only on row m of xq and xs[m]: batch
// invariant, whatever the register block or the thread split of N.
//
// FP8 Ops contract: gemm_impl.h's, with separate element types
//   XElem  (uint16_t, bf16 bits)   WElem  (uint8_t, e4m3 codes)
// and
//   Bf16                     the ISA's bf16 Ops whose dot / reduce the FP8 Ops reproduce
//   kPrepack, prepack_chunk(c)   whether the kernel wants the codes of each full kChunk of a
//                            row (on each K segment's chunk grid) rewritten at load, and how
//                            one such chunk is, in place (a byte permutation inside it:
//                            gemm_fp8_ops_vbmi.h; each code's bits permuted: gemm_fp8_ops_f16c.h)
//   widen_row(w, K, segments, out)   a row's bf16 bits in K order (undoing any prepack)
//
// Prefill (M > kSmallM): the weights of a tile are widened to bf16 once into a
// strip (Ops::widen_row) and the Bf16 Ops' blocks run over every m-block from
// it: the same products and the same dot sequence as converting in registers,
// so the same bits, without converting per m-block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gemm_impl.h"  // reduce_accs, kPrefetchBytes

namespace troupe {
namespace {

// Pieces of an FP8 block's segment loop outside its hot chunk loop, shared by gemm_fp8_block and
// the avx2 layout's f16c_block (f16c_row_blocks.h). Inlined, so the accumulators stay in registers.
// c[i * NB + j] = fp32(xs[i] * ws[j]).
template <int MB, int NB>
[[gnu::always_inline]] inline void fp8_block_scales(const float* xs, const float* ws, float* c) {
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) c[i * NB + j] = xs[i] * ws[j];
}
// The dot of a zero-padded tail chunk of n < kChunk K from k, for every row of x.
template <class Ops, int MB, int NB>
[[gnu::always_inline]] inline void fp8_tail_dot(typename Ops::Acc* acc, const typename Ops::WVec* wv,
                                                const typename Ops::XElem* x, size_t K, size_t k, size_t n) {
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i) {
    const typename Ops::XVec xv = Ops::load_x_tail(x + i * K + k, n);
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) acc[i * NB + j] = Ops::dot(acc[i * NB + j], xv, wv[j]);
  }
}
// Segment s's lane sums reduced, scaled and added to out (out = term for s = 0).
template <class Ops, int MB, int NB>
[[gnu::always_inline]] inline void fp8_segment_out(const typename Ops::Acc* acc, const float* c, size_t s, float* out,
                                                   size_t ldo) {
  float p[MB * NB];
  reduce_accs<Ops, MB * NB>(acc, p);
#pragma GCC unroll 16
  for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NB; ++j) {
      const float v = p[i * NB + j] * c[i * NB + j];
      out[i * ldo + j] = s == 0 ? v : out[i * ldo + j] + v;
    }
}

// The segment loop repeats gemm_block's (gemm_impl.h) on purpose: factored into
// one always_inline helper shared by both, decode lost ~40% (FP8 all 21.0 ->
// 13.1 tok/s, bf16 12.3 -> 10.8 in `npm run bench:fp8`): GCC no longer kept
// the accumulators in registers. Change both together.
// Segments [s0, s1) of the block, as gemm_block's (a one-segment call streams that segment).
template <class Ops, int MB, int NB>
void gemm_fp8_block(const typename Ops::WElem* w, const typename Ops::XElem* x, size_t K, size_t s0, size_t s1,
                    size_t segments, const float* xs, const float* ws, float* out, size_t ldo, bool pf,
                    const typename Ops::WElem* next) {
  using WElem = typename Ops::WElem;
  // Chunks per 64-byte line of w, and the prefetch distance in elements.
  constexpr size_t kLineChunks = Ops::kChunk * sizeof(WElem) >= 64 ? 1 : 64 / (Ops::kChunk * sizeof(WElem));
  constexpr size_t kAhead = kPrefetchBytes / sizeof(WElem);
  const bool one_segment = s1 - s0 == 1;
  const size_t stream_begin = one_segment ? K * s0 / segments : 0;
  const size_t stream_end = one_segment ? K * s1 / segments : K;
  float c[MB * NB];
  fp8_block_scales<MB, NB>(xs, ws, c);
  for (size_t s = s0; s < s1; ++s) {
    const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments;
    typename Ops::Acc acc[MB * NB];
#pragma GCC unroll 32
    for (int a = 0; a < MB * NB; ++a) acc[a] = Ops::zero();
    size_t k = k0;
    for (; k + Ops::kChunk <= k1; k += Ops::kChunk) {
      typename Ops::WVec wv[NB];
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w(w + j * K + k);
      if (pf && ((k - k0) / Ops::kChunk) % kLineChunks == 0) {
        if (k + kAhead < stream_end) {
#pragma GCC unroll 16
          for (int j = 0; j < NB; ++j) Ops::prefetch(w + j * K + k + kAhead);
        } else if (next != nullptr) {
#pragma GCC unroll 16
          for (int j = 0; j < NB; ++j) Ops::prefetch(next + j * K + stream_begin + (k + kAhead - stream_end));
        }
      }
#pragma GCC unroll 16
      for (int i = 0; i < MB; ++i) {
        const typename Ops::XVec xv = Ops::load_x(x + i * K + k);
#pragma GCC unroll 16
        for (int j = 0; j < NB; ++j) acc[i * NB + j] = Ops::dot(acc[i * NB + j], xv, wv[j]);
      }
    }
    if (k < k1) {  // tail: the same dot on a zero-padded chunk
      const size_t n = k1 - k;
      typename Ops::WVec wv[NB];
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w_tail(w + j * K + k, n);
      fp8_tail_dot<Ops, MB, NB>(acc, wv, x, K, k, n);
    }
    fp8_segment_out<Ops, MB, NB>(acc, c, s, out, ldo);
  }
}

template <class Ops>
using GemmFp8BlockFn = void (*)(const typename Ops::WElem*, const typename Ops::XElem*, size_t, size_t, size_t, size_t,
                                const float*, const float*, float*, size_t, bool, const typename Ops::WElem*);

template <class Ops, int MB, int NB>
GemmFp8BlockFn<Ops> gemm_fp8_block_fn(size_t mb, size_t nb) {
  if constexpr (MB > 1) {
    if (mb < static_cast<size_t>(MB)) return gemm_fp8_block_fn<Ops, MB - 1, NB>(mb, nb);
  }
  if constexpr (NB > 1) {
    if (nb < static_cast<size_t>(NB)) return gemm_fp8_block_fn<Ops, MB, NB - 1>(mb, nb);
  }
  return &gemm_fp8_block<Ops, MB, NB>;
}

// n-blocks outside, m-blocks inside (a block of NB weight rows read from
// memory once per call), as gemm_impl.h.
template <class Ops, int MB, int NB>
void gemm_fp8_blocks(const uint8_t* w, const typename Ops::XElem* x, const float* xs, const float* ws, float* out,
                     size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  for (size_t nb0 = n0; nb0 < n1; nb0 += NB) {
    const size_t nb = n1 - nb0 < static_cast<size_t>(NB) ? n1 - nb0 : NB;
    const uint8_t* next = nb0 + 2 * NB <= n1 ? w + (nb0 + NB) * K : nullptr;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
      const size_t mb = M - m0 < static_cast<size_t>(MB) ? M - m0 : MB;
      gemm_fp8_block_fn<Ops, MB, NB>(mb, nb)(w + nb0 * K, x + m0 * K, K, 0, segments, segments, xs + m0, ws + nb0,
                                             out + m0 * ldo + nb0, ldo, m0 == 0, next);
    }
  }
}

// The Bf16 Ops seen through the FP8 contract, for the prefill strips (bf16 weights).
template <class B>
struct Bf16StripOps : B {
  using XElem = uint16_t;
  using WElem = uint16_t;
};

// Rows of w a prefill strip holds at most: [rows, K] bf16 bits, 4 MiB at K = 2048.
constexpr size_t kFp8StripBytes = 4 << 20;

// Prefill: the tile's rows widened to a bf16 strip once (in pieces of at most
// kFp8StripBytes), then the bf16 blocks over the strip in the chunked order of
// gemm_impl.h (x in L2, NB rows of the strip in L1).
template <class Ops>
void gemm_fp8_strips(const uint8_t* w, const uint16_t* x, const float* xs, const float* ws, float* out, size_t M,
                     size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  using S = Bf16StripOps<typename Ops::Bf16>;
  constexpr int MB = S::kMB, NB = S::kNB;
  const size_t piece = rows_fitting(kFp8StripBytes, K * sizeof(uint16_t), NB);
  static thread_local std::vector<uint16_t> strip;  // [piece, K] bf16 bits, per compute thread
  for (size_t p0 = n0; p0 < n1; p0 += piece) {
    const size_t p1 = n1 - p0 < piece ? n1 : p0 + piece;
    if (strip.size() < (p1 - p0) * K) strip.resize((p1 - p0) * K);
    for (size_t n = p0; n < p1; ++n) Ops::widen_row(w + n * K, K, segments, strip.data() + (n - p0) * K);
    const uint16_t* sw = strip.data();
    for_each_chunked_block<MB, NB>(
        M, 0, p1 - p0, K, segments, sizeof(uint16_t),
        [&](size_t m0, size_t mb, size_t nb0, size_t nb, size_t s, bool pf, bool has_next) {
          gemm_fp8_block_fn<S, MB, NB>(mb, nb)(sw + nb0 * K, x + m0 * K, K, s, s + 1, segments, xs + m0,
                                               ws + p0 + nb0, out + m0 * ldo + p0 + nb0, ldo, pf,
                                               has_next ? sw + (nb0 + NB) * K : nullptr);
        });
  }
}

// (rows: unused, these kernels read the rows as stored or chunk-reordered within each row.)
template <class Ops>
void gemm_fp8_run(const uint8_t* w, size_t /*rows*/, const uint16_t* xq, const float* xs, const float* ws, float* out,
                  size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  if (segments == 0) segments = 1;
  if (M == 1) return gemm_fp8_blocks<Ops, 1, Ops::kNB1>(w, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
  if (M <= Ops::kSmallM)
    return gemm_fp8_blocks<Ops, Ops::kMBs, Ops::kNBs>(w, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
  gemm_fp8_strips<Ops>(w, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
}

// Rewrites the codes of rows [0, N) for Ops (a no-op unless Ops::kPrepack): every full chunk
// of each K segment, as gemm_fp8_block walks them; tails stay as stored.
template <class Ops>
void gemm_fp8_prepack(uint8_t* w, size_t N, size_t K, size_t segments) {
  if constexpr (Ops::kPrepack) {
    if (segments == 0) segments = 1;
    for (size_t n = 0; n < N; ++n)
      for (size_t s = 0; s < segments; ++s) {
        const size_t k0 = K * s / segments, k1 = K * (s + 1) / segments;
        for (size_t k = k0; k + Ops::kChunk <= k1; k += Ops::kChunk) Ops::prepack_chunk(w + n * K + k);
      }
  }
}

}  // namespace
}  // namespace troupe
