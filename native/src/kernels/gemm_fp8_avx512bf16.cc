// The FP8 GEMM for the avx512bf16-vbmi path: fp8/gemm_fp8_impl.h with Fp8VbmiOps.
#include "kernels/gemm_ops_avx512bf16.h"
#include "kernels/fp8/gemm_fp8_ops_vbmi.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_avx512bf16_vbmi() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8VbmiOps>, &gemm_fp8_prepack<Fp8VbmiOps>, "chunk64-lane-interleaved", "avx512bf16-vbmi", true};
  return &kTable;
}

}  // namespace troupe
