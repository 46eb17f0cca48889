// The forward pass's kernel table for the scalar path: gemm_impl.h with
// gemm_ops_scalar.h, and the portable kernels of model_kernels_impl.h compiled
// with this TU's ISA flags (native/CMakeLists.txt).
#include "kernels/gemm_ops_scalar.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {

const ModelKernels* model_kernels_scalar() {
  static constexpr ModelKernels kTable = make_model_kernels<ScalarOps, ScalarF32Ops>();
  return &kTable;
}

}  // namespace troupe
