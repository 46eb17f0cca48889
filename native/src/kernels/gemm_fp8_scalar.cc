// The FP8 GEMM for the scalar path: fp8/gemm_fp8_impl.h with Fp8TableOps<ScalarOps>.
#include "kernels/gemm_ops_scalar.h"
#include "kernels/fp8/gemm_fp8_ops_table.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_scalar() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<ScalarOps>>, nullptr, nullptr, "scalar"};
  return &kTable;
}

}  // namespace troupe
