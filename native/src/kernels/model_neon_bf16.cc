// The forward pass's kernel table for the neon-bf16 path: gemm_impl.h with
// gemm_ops_neon_bf16.h (fp32 weights: NeonF32Ops), and the portable kernels of
// model_kernels_impl.h compiled with this TU's ISA flags (native/CMakeLists.txt).
#include "kernels/gemm_ops_neon_bf16.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {

const ModelKernels* model_kernels_neon_bf16() {
  static constexpr ModelKernels kTable = make_model_kernels<NeonBf16Ops, NeonF32Ops>();
  return &kTable;
}

}  // namespace troupe
