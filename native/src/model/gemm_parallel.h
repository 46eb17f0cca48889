// A GEMM over the thread pool: threads split N (never K) into tiles claimed
// from the pool's atomic counter, each tile computed by the ISA's gemm
// (gemm_impl.h) and then handed to an epilogue on the same thread while its
// outputs are still in cache (the residual add, SiLU-and-mul). Since each
// output's arithmetic is fixed by gemm_impl.h, neither the tiling nor the
// thread that runs a tile changes a bit.
//
// Tiles are whole multiples of kGemmTileQuantum columns (48: a multiple of
// every register block width, 1..4 and 3, and of 16), about 8 per thread so
// that a thread slowed down by a noisy neighbour leaves its share to the
// others, and none for products too small to be worth a wake-up.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/model_kernels.h"
#include "platform/thread_pool.h"

namespace troupe {

constexpr size_t kGemmTileQuantum = 48;

// The packed x of gemm_parallel (paths with ModelKernels::pack_x): one buffer per
// calling thread, shared by every instantiation, grown to the largest x seen.
inline std::vector<uint32_t>& gemm_packed_x_buffer() {
  static thread_local std::vector<uint32_t> buffer;
  return buffer;
}

struct GemmTiles {
  size_t step;   // columns per tile
  size_t count;  // tiles
};

inline GemmTiles gemm_tiles(size_t M, size_t N, size_t K, size_t threads) {
  if (N == 0) return {0, 0};
  if (M * N * K < (size_t{1} << 16) || threads <= 1) return {N, 1};
  const size_t want = std::min(threads * 8, N / kGemmTileQuantum + 1);
  const size_t step = ((N + want - 1) / want + kGemmTileQuantum - 1) / kGemmTileQuantum * kGemmTileQuantum;
  return {step, (N + step - 1) / step};
}

// x packed whole on the calling thread, into `buffer` (grown to fit), for a path with a
// packed route and M >= its packed_min_rows: what gemm_pack_x_once does
// when one task packs it, and how the probes take a linear's route.
template <class Table>
const uint32_t* gemm_pack_x_whole(const Table& k, const uint16_t* xb, size_t M, size_t K, size_t segments,
                                  std::vector<uint32_t>& buffer) {
  buffer.resize(k.packed_x_words(M, K, segments));
  k.pack_x(xb, M, K, segments, 0, (M + 15) / 16, buffer.data());
  return buffer.data();
}

// A path that reads x packed (amx; avx2 from its panel kernel's rows on, bf16 and FP8)
// packs the bf16 x once per GEMM here, 16 rows per task, instead of once per tile; the
// bits are the unpacked kernel's. The buffer is the calling thread's; the tiles get its
// address. Null where the path reads x as it is. Table: ModelKernels or Fp8Kernels (their
// packed_x_words, pack_x and packed_min_rows).
template <class Table>
const uint32_t* gemm_pack_x_once(ThreadPool& pool, const Table& k, const uint16_t* xb, size_t M, size_t K,
                                 size_t segments, const GemmTiles& t) {
  if (k.pack_x == nullptr || M < k.packed_min_rows) return nullptr;
  std::vector<uint32_t>& buffer = gemm_packed_x_buffer();
  const size_t blocks = (M + 15) / 16;
  if (t.count <= 1 || blocks <= 1) return gemm_pack_x_whole(k, xb, M, K, segments, buffer);
  buffer.resize(k.packed_x_words(M, K, segments));
  uint32_t* p = buffer.data();
  pool.parallel_for(blocks, [&](size_t b) { k.pack_x(xb, M, K, segments, b, b + 1, p); });
  return p;
}

// out[m * ldo + n] for n < N (gemm_impl.h's sum of `segments` K ranges), then
// after(n0, n1) for each tile [n0, n1) once its outputs are written.
//   bf16: w and x are bf16 bits (x already rounded); else both fp32.
template <typename After>
void gemm_parallel(ThreadPool& pool, const ModelKernels& k, bool bf16, const void* w,
                   const void* x, float* out, size_t M, size_t N, size_t K, size_t ldo,
                   size_t segments, After after) {
  if (M == 0 || N == 0) return;
  const GemmTiles t = gemm_tiles(M, N, K, pool.threads());
  const uint32_t* packed = bf16 ? gemm_pack_x_once(pool, k, static_cast<const uint16_t*>(x), M, K, segments, t) : nullptr;
  auto run = [&](size_t i) {
    const size_t n0 = i * t.step, n1 = std::min(N, n0 + t.step);
    if (packed != nullptr)
      k.gemm_bf16_packed(static_cast<const uint16_t*>(w), packed, out, M, n0, n1, ldo, K, segments);
    else if (bf16)
      k.gemm_bf16(static_cast<const uint16_t*>(w), static_cast<const uint16_t*>(x), out, M, n0, n1,
                  ldo, K, segments);
    else
      k.gemm_f32(static_cast<const float*>(w), static_cast<const float*>(x), out, M, n0, n1, ldo, K,
                 segments);
    after(n0, n1);
  };
  if (t.count <= 1) run(0);
  else pool.parallel_for(t.count, run);
}

struct NoEpilogue {
  void operator()(size_t, size_t) const {}
};

}  // namespace troupe
