// GEMMs of a Linear (linear.h) over the thread pool: gemm_parallel.h's tiles
// (threads split N, never K), each tile run by the kernel the weight type
// needs (bf16 / fp32: ModelKernels; FP8: Fp8Kernels).
#pragma once

#include <stdexcept>

#include "kernels/fp8/fp8_kernels.h"
#include "model/gemm_parallel.h"
#include "model/linear.h"

namespace troupe {

// Columns [n0, n1) of out = in * lin^T (gemm_impl.h / kernels/fp8/gemm_fp8_impl.h).
inline void linear_tile(const ModelKernels& k, const Fp8Kernels* f8, const Linear& lin, LinearInput in,
                        float* out, size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  switch (lin.type) {
    case WeightType::Bf16:
      k.gemm_bf16(static_cast<const uint16_t*>(lin.w), static_cast<const uint16_t*>(in.x), out, M, n0, n1, ldo, K, segments);
      return;
    case WeightType::F32:
      k.gemm_f32(static_cast<const float*>(lin.w), static_cast<const float*>(in.x), out, M, n0, n1, ldo, K, segments);
      return;
    case WeightType::E4m3:
      f8->gemm(static_cast<const uint8_t*>(lin.w), lin.rows, static_cast<const uint16_t*>(in.x), in.scales, lin.scale,
               out, M, n0, n1, ldo, K, segments);
      return;
  }
}

// out[m * ldo + n] for n < N, then after(n0, n1) per tile (gemm_parallel.h); bf16 x
// packed once for the call where the path reads it packed (gemm_pack_x_once).
template <typename After>
void linear_parallel(ThreadPool& pool, const ModelKernels& k, const Fp8Kernels* f8, const Linear& lin,
                     LinearInput in, float* out, size_t M, size_t N, size_t K, size_t ldo, size_t segments,
                     After after) {
  if (M == 0 || N == 0) return;
  const GemmTiles t = gemm_tiles(M, N, K, pool.threads());
  const uint16_t* xb = static_cast<const uint16_t*>(in.x);
  const uint32_t* packed = nullptr;
  if (lin.type == WeightType::Bf16) packed = gemm_pack_x_once(pool, k, xb, M, K, segments, t);
  else if (lin.type == WeightType::E4m3 && f8 != nullptr) packed = gemm_pack_x_once(pool, *f8, xb, M, K, segments, t);
  auto run = [&](size_t i) {
    const size_t n0 = i * t.step, n1 = std::min(N, n0 + t.step);
    if (packed == nullptr)
      linear_tile(k, f8, lin, in, out, M, n0, n1, ldo, K, segments);
    else if (lin.type == WeightType::Bf16)
      k.gemm_bf16_packed(static_cast<const uint16_t*>(lin.w), packed, out, M, n0, n1, ldo, K, segments);
    else
      f8->gemm_packed(static_cast<const uint8_t*>(lin.w), lin.rows, packed, in.scales, lin.scale, out, M, n0, n1,
                      ldo, K, segments);
    after(n0, n1);
  };
  if (t.count <= 1) run(0);
  else pool.parallel_for(t.count, run);
}

}  // namespace troupe
