// The forward pass's kernel table for the avx512 path: gemm_impl.h with
// gemm_ops_avx512.h, and the portable kernels of model_kernels_impl.h compiled
// with this TU's ISA flags (native/CMakeLists.txt).
#include "kernels/gemm_ops_avx512.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {

const ModelKernels* model_kernels_avx512() {
  static constexpr ModelKernels kTable = make_model_kernels<Avx512Ops, Avx512F32Ops>();
  return &kTable;
}

}  // namespace troupe
