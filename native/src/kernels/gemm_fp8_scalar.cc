// The FP8 GEMM for the scalar path: fp8/gemm_fp8_impl.h with Fp8TableOps<ScalarOps>.
#include "gemm_ops_scalar.h"
#include "fp8/gemm_fp8_ops_table.h"
#include "fp8/gemm_fp8_impl.h"
#include "fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_scalar() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<ScalarOps>>, nullptr, nullptr, "scalar"};
  return &kTable;
}

}  // namespace troupe
