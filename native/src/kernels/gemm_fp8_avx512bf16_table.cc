// The FP8 GEMM for the avx512bf16-table path: fp8/gemm_fp8_impl.h with Fp8TableOps<Avx512Bf16Ops>.
#include "kernels/gemm_ops_avx512bf16.h"
#include "kernels/fp8/gemm_fp8_ops_table.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_avx512bf16_table() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<Avx512Bf16Ops>>, nullptr, nullptr, "avx512bf16-table"};
  return &kTable;
}

}  // namespace troupe
