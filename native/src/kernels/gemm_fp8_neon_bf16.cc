// The FP8 GEMM for the neon-bf16 path: fp8/gemm_fp8_impl.h with Fp8NeonOps<NeonBf16Ops>
// (codes widened to bf16 in registers, then the path's bf16 dot).
#include "kernels/gemm_ops_neon_bf16.h"
#include "kernels/fp8/gemm_fp8_ops_neon.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels_neon_bf16() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8NeonOps<NeonBf16Ops>>, nullptr, nullptr, "neon-bf16"};
  return &kTable;
}

}  // namespace troupe
