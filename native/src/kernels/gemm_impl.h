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
//   kNB1                     register block for M = 1: 1 x kNB1 rows of w
//   kMBs, kNBs, kSmallM      register block for 1 < M <= kSmallM (decode batches)
//   kMB, kNB                 register block for larger M (prefill)
//   zero(), load_x(p), load_w(p), load_x_tail(p, n), load_w_tail(p, n), dot(acc, x, w), reduce(acc)
//   prefetch(p)              a software prefetch of the cache line holding p (may be a no-op)
//   kReduce16, reduce16(a, out)  when true: 16 accumulators reduced at once, each exactly as
//                            reduce() would (a transposed tree: fewer shuffles per result)
//   optional kStripM, strips(w, x, out, M, n0, n1, ldo, K, segments)   an ISA's own kernel
//                            for M >= kStripM, computing the same bits as the blocks below
//                            (kernels/gemm_strips_avx2.h)
//
// What is computed, for n in [n0, n1) and every m < M:
//   out[m * ldo + n] = P_0 + P_1 + ... + P_{S-1}      (added left to right, in fp32)
//   P_s = sum over k in [K*s/S, K*(s+1)/S) of x[m * K + k] * w[n * K + k]
// S = `segments`. Each P_s is one accumulator per output, K consumed in kChunk
// steps in increasing order (the tail chunk zero padded), lanes reduced in a
// fixed tree: the same instruction sequence for every M, every [n0, n1) split
// and every register block, so a row's result never depends on the rest of
// the batch, on the block shape chosen for this M, or on how threads divide
// N. Row-parallel layers (o_proj, down_proj) use S = 8 so that a
// tensor-parallel split of K over 1, 2, 4 or 8 ranks can reproduce the same
// sum bit for bit.
//
// Loop order: n-blocks outside, m-blocks inside, so a block of NB weight rows
// is read from memory once per call and reused for the whole batch (from L1 /
// L2 for the later m-blocks). Prefill (M > kSmallM) walks the same blocks in
// gemm_blocks_chunked's order instead, which keeps x in L2. The weights are
// the HF [N, K] rows as stored (no repacking: the mmap option and the tied
// embedding use them in place).
//
// Memory streaming. For the 1-row decode the GEMV is bandwidth bound and the
// hardware prefetcher alone restarts at every 4 KiB page (one row of a
// K = 2048 bf16 matrix). So the first m-block of an n-block treats its NB rows
// as NB streams, each going on in the same row of the next block, and
// prefetches kPrefetchBytes ahead in each: one prefetch per 64-byte line.
// Prefetches never reach past n1, the end of the caller's tile. Measured on
// the llama-3.2-1b shapes against the read-bandwidth probe (2 threads): the
// 1-row GEMV over a step's matrices went from ~81% without prefetch to ~94%;
// for K = 8192 a 2 KiB distance beat prefetching the next block's rows at the
// same offsets (0.96 vs 0.905 of the probe); the 8 x 3 block took M = 8 from
// ~66% to ~90% of the bf16 peak (bench/gemm.bench.ts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace troupe {
namespace {

template <class Ops, class = void>
struct HasStrips : std::false_type {};
template <class Ops>
struct HasStrips<Ops, std::void_t<decltype(Ops::kStripM)>> : std::true_type {};

// Reduces n accumulators into out[0..n): Ops::reduce16 (a transposed
// reduction of 16 accumulators at once, the same additions as reduce()) where
// the ISA has one, else one reduce() each.
template <class Ops, int N>
inline void reduce_accs(const typename Ops::Acc* acc, float* out) {
  if constexpr (Ops::kReduce16) {
    int i = 0;
    for (; i + 16 <= N; i += 16) Ops::reduce16(acc + i, out + i);
    if (i < N) {
      typename Ops::Acc tail[16];
      float r[16];
      for (int j = 0; j < 16; ++j) tail[j] = i + j < N ? acc[i + j] : Ops::zero();
      Ops::reduce16(tail, r);
      for (int j = 0; i + j < N; ++j) out[i + j] = r[j];
    }
  } else {
    for (int i = 0; i < N; ++i) out[i] = Ops::reduce(acc[i]);
  }
}

// Software prefetch distance: this many bytes ahead in each weight row's stream.
constexpr size_t kPrefetchBytes = 2048;

// Segments [s0, s1) of out[i * ldo + j] (i < MB, j < NB) = P_0 + ... + P_{S-1}, P_s the
// dot over K segment s: out = P_s0 when s0 == 0, else out + P_s0; then + P_s0+1, ...
//   w    points at w[n0, 0] (row stride K), x at x[m0, 0] (row stride K)
//   pf   whether to prefetch: each of the NB rows is a stream that goes on in row j of
//        the next block (`next`, null at the end of the caller's range); a line
//        kPrefetchBytes ahead is prefetched per 64 bytes read. A call over one segment
//        streams that segment: its row j goes on in the same segment of next's row j.
template <class Ops, int MB, int NB>
void gemm_block(const typename Ops::Elem* w, const typename Ops::Elem* x, size_t K, size_t s0, size_t s1,
                size_t segments, float* out, size_t ldo, bool pf, const typename Ops::Elem* next) {
  using Elem = typename Ops::Elem;
  // Chunks per 64-byte line (1 when a chunk is a whole line or more).
  constexpr size_t kLineChunks =
      Ops::kChunk * sizeof(Elem) >= 64 ? 1 : 64 / (Ops::kChunk * sizeof(Elem));
  constexpr size_t kAhead = kPrefetchBytes / sizeof(Elem);
  const bool one_segment = s1 - s0 == 1;
  const size_t stream_begin = one_segment ? K * s0 / segments : 0;
  const size_t stream_end = one_segment ? K * s1 / segments : K;
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
    if (k < k1) {  // tail: same dot on a zero-padded chunk
      const size_t n = k1 - k;
      typename Ops::WVec wv[NB];
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j) wv[j] = Ops::load_w_tail(w + j * K + k, n);
#pragma GCC unroll 16
      for (int i = 0; i < MB; ++i) {
        const typename Ops::XVec xv = Ops::load_x_tail(x + i * K + k, n);
#pragma GCC unroll 16
        for (int j = 0; j < NB; ++j) acc[i * NB + j] = Ops::dot(acc[i * NB + j], xv, wv[j]);
      }
    }
    float p[MB * NB];
    reduce_accs<Ops, MB * NB>(acc, p);
#pragma GCC unroll 16
    for (int i = 0; i < MB; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < NB; ++j)
        out[i * ldo + j] = s == 0 ? p[i * NB + j] : out[i * ldo + j] + p[i * NB + j];
  }
}

template <class Ops>
using GemmBlockFn = void (*)(const typename Ops::Elem*, const typename Ops::Elem*, size_t, size_t, size_t,
                             size_t, float*, size_t, bool, const typename Ops::Elem*);

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

// Every n-block of NB rows in [n0, n1), every m-block of MB rows.
template <class Ops, int MB, int NB>
void gemm_blocks(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
                 size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  for (size_t nb0 = n0; nb0 < n1; nb0 += NB) {
    const size_t nb = n1 - nb0 < static_cast<size_t>(NB) ? n1 - nb0 : NB;
    // The next block is prefetched only when it is a whole block inside the range.
    const typename Ops::Elem* next = nb0 + 2 * NB <= n1 ? w + (nb0 + NB) * K : nullptr;
    for (size_t m0 = 0; m0 < M; m0 += MB) {
      const size_t mb = M - m0 < static_cast<size_t>(MB) ? M - m0 : MB;
      gemm_block_fn<Ops, MB, NB>(mb, nb)(w + nb0 * K, x + m0 * K, K, 0, segments, segments,
                                         out + m0 * ldo + nb0, ldo, m0 == 0, next);
    }
  }
}

// Bytes of x (one K segment of a chunk of rows) that the prefill loop keeps in L2.
constexpr size_t kXChunkBytes = 256 * 1024;

// The most rows of row_bytes that fit in `bytes`, a multiple of `multiple` and at least one multiple.
inline size_t rows_fitting(size_t bytes, size_t row_bytes, size_t multiple) {
  const size_t fit = bytes / row_bytes / multiple * multiple;
  return fit < multiple ? multiple : fit;
}

// The prefill loop: the same blocks as gemm_blocks, in an order that keeps both
// operands in cache. Segment by segment (each output still adds its P_s in
// order s = 0, 1, ...), then chunks of rows whose x over the segment fills at most
// kXChunkBytes (L2), then n-blocks (NB weight rows over the segment: L1), then the
// chunk's m-blocks. gemm_blocks' order reads all of x once per n-block: for
// prefill that is MiBs from L3 for every NB weight rows.
//   block(m0, mb, nb0, nb, s, pf, has_next)   one mb x nb block over segment s; pf on the
//        first m-block of each n-block; has_next when the next n-block is whole and in range
template <int MB, int NB, class Block>
inline void for_each_chunked_block(size_t M, size_t n0, size_t n1, size_t K, size_t segments, size_t x_elem_bytes,
                                   Block&& block) {
  const size_t longest = (K + segments - 1) / segments;
  const size_t chunk = rows_fitting(kXChunkBytes, longest * x_elem_bytes, MB);
  for (size_t s = 0; s < segments; ++s) {
    for (size_t c0 = 0; c0 < M; c0 += chunk) {
      const size_t c1 = M - c0 < chunk ? M : c0 + chunk;
      for (size_t nb0 = n0; nb0 < n1; nb0 += NB) {
        const size_t nb = n1 - nb0 < static_cast<size_t>(NB) ? n1 - nb0 : NB;
        for (size_t m0 = c0; m0 < c1; m0 += MB) {
          const size_t mb = c1 - m0 < static_cast<size_t>(MB) ? c1 - m0 : MB;
          block(m0, mb, nb0, nb, s, m0 == c0, nb0 + 2 * NB <= n1);
        }
      }
    }
  }
}

template <class Ops, int MB, int NB>
void gemm_blocks_chunked(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
                         size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  for_each_chunked_block<MB, NB>(M, n0, n1, K, segments, sizeof(typename Ops::Elem),
                                 [&](size_t m0, size_t mb, size_t nb0, size_t nb, size_t s, bool pf, bool has_next) {
                                   gemm_block_fn<Ops, MB, NB>(mb, nb)(w + nb0 * K, x + m0 * K, K, s, s + 1, segments,
                                                                      out + m0 * ldo + nb0, ldo, pf,
                                                                      has_next ? w + (nb0 + NB) * K : nullptr);
                                 });
}

template <class Ops>
void gemm_run(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
              size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  if (segments == 0) segments = 1;
  if (M == 1) return gemm_blocks<Ops, 1, Ops::kNB1>(w, x, out, M, n0, n1, ldo, K, segments);
  if constexpr (HasStrips<Ops>::value) {
    if (M >= Ops::kStripM) return Ops::strips(w, x, out, M, n0, n1, ldo, K, segments);
  }
  if (M <= Ops::kSmallM)
    return gemm_blocks<Ops, Ops::kMBs, Ops::kNBs>(w, x, out, M, n0, n1, ldo, K, segments);
  gemm_blocks_chunked<Ops, Ops::kMB, Ops::kNB>(w, x, out, M, n0, n1, ldo, K, segments);
}

}  // namespace
}  // namespace troupe
