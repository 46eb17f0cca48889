// The FP8 GEMM for the avx512 path: fp8/gemm_fp8_impl.h with Fp8TableOps<Avx512Ops>.
#include "kernels/gemm_ops_avx512.h"
#include "kernels/fp8/gemm_fp8_ops_table.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_avx512() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<Avx512Ops>>, nullptr, nullptr, "avx512"};
  return &kTable;
}

}  // namespace troupe
