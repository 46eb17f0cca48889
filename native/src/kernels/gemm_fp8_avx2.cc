// The FP8 GEMM for the avx2 path: fp8/gemm_fp8_impl.h with Fp8TableOps<Avx2Ops>.
#include "gemm_ops_avx2.h"
#include "fp8/gemm_fp8_ops_table.h"
#include "fp8/gemm_fp8_impl.h"
#include "fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_avx2() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<Avx2Ops>>, nullptr, nullptr, "avx2"};
  return &kTable;
}

}  // namespace troupe
