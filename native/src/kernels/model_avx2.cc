// The forward pass's kernel table for the avx2 path: gemm_impl.h with
// gemm_ops_avx2.h, and the portable kernels of model_kernels_impl.h compiled
// with this TU's ISA flags (native/CMakeLists.txt).
#include "kernels/gemm_ops_avx2.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {

namespace {

void avx2_gemm_bf16_packed(const uint16_t* w, const uint32_t* packed, float* out, size_t M, size_t n0, size_t n1,
                           size_t ldo, size_t K, size_t segments) {
  StripPanelsBf16 panels{w, K};
  gemm_strips_avx2_packed(panels, strip_packed_floats(packed), nullptr, nullptr, out, M, n0, n1, ldo, K, segments);
}

constexpr ModelKernels make_avx2_kernels() {
  ModelKernels k = make_model_kernels<Avx2Ops, Avx2F32Ops>();
  k.packed_x_words = &strip_packed_x_words;
  k.pack_x = &strip_pack_x_rows;
  k.gemm_bf16_packed = &avx2_gemm_bf16_packed;
  k.packed_min_rows = Avx2Ops::kStripM;
  return k;
}

}  // namespace

const ModelKernels* model_kernels_avx2() {
  static constexpr ModelKernels kTable = make_avx2_kernels();
  return &kTable;
}

}  // namespace troupe
