// The FP8 GEMM for the avx2 path: codes widened in registers through F16C
// (fp8/gemm_fp8_ops_f16c.h) for M < Fp8F16cOps::kSmallM + 1 rows, fp32 strips
// (kernels/gemm_strips_avx2.h) from there on; and the table kernel
// (Fp8TableOps<Avx2Ops>, K order) that tests compare it with.
#include "kernels/gemm_ops_avx2.h"
#include "kernels/fp8/gemm_fp8_ops_f16c.h"
#include "kernels/fp8/gemm_fp8_ops_table.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {
namespace {

// Prepacked e4m3 rows [N, K] (Fp8F16cOps' layout): a row's K segment widened to exact fp32.
struct StripWidenF16c {
  const uint8_t* w;
  size_t K;
  void operator()(size_t n, size_t k0, size_t k1, float* dst) const { Fp8F16cOps::widen_f32(w + n * K, k0, k1, dst); }
};

void gemm_fp8_avx2(const uint8_t* w, const uint16_t* xq, const float* xs, const float* ws, float* out, size_t M,
                   size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  using Ops = Fp8F16cOps;
  if (segments == 0) segments = 1;
  if (M == 1) return gemm_fp8_blocks<Ops, 1, Ops::kNB1>(w, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
  if (M <= Ops::kSmallM)
    return gemm_fp8_blocks<Ops, Ops::kMBs, Ops::kNBs>(w, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
  gemm_strips_avx2(StripWidenF16c{w, K}, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
}

}  // namespace

const Fp8Kernels* fp8_kernels_avx2() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_avx2, &gemm_fp8_prepack<Fp8F16cOps>, "chunk16-word-paired", "avx2-f16c"};
  return &kTable;
}

const Fp8Kernels* fp8_kernels_avx2_table() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<Avx2Ops>>, nullptr, nullptr, "avx2-table"};
  return &kTable;
}

}  // namespace troupe
