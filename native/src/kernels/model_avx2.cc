// The forward pass's kernel table for the avx2 path: gemm_impl.h with
// gemm_ops_avx2.h, and the portable kernels of model_kernels_impl.h compiled
// with this TU's ISA flags (native/CMakeLists.txt).
#include "kernels/gemm_ops_avx2.h"
#include "kernels/gemm_impl.h"
#include "kernels/model_kernels_impl.h"

namespace troupe {

namespace {

// gemm_parallel's packed x for the panel kernel (gemm_strips_avx2.h): StripXLayout's floats,
// from the buffer's first 32-byte boundary (its aligned loads); a row block of 16 rows is
// 16 / kStripMB m-blocks.
static_assert(16 % kStripMB == 0, "a pack_x row block is whole m-blocks");
constexpr size_t kMBlocksPerRowBlock = 16 / kStripMB;

float* aligned_floats(const uint32_t* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 31) & ~uintptr_t{31});
}

size_t avx2_packed_x_words(size_t M, size_t K, size_t segments) { return StripXLayout(M, K, segments).floats() + 8; }

void avx2_pack_x(const uint16_t* xb, size_t M, size_t K, size_t segments, size_t b0, size_t b1, uint32_t* packed) {
  const StripXLayout lay(M, K, segments);
  const size_t mb0 = b0 * kMBlocksPerRowBlock, mb1 = std::min(lay.mblocks, b1 * kMBlocksPerRowBlock);
  strip_pack_blocks(lay, xb, M, mb0, mb1, aligned_floats(packed) + mb0 * lay.block_floats);
}

void avx2_gemm_bf16_packed(const uint16_t* w, const uint32_t* packed, float* out, size_t M, size_t n0, size_t n1,
                           size_t ldo, size_t K, size_t segments) {
  StripPanelsBf16 panels{w, K};
  gemm_strips_avx2_packed(panels, aligned_floats(packed), nullptr, nullptr, out, M, n0, n1, ldo, K, segments);
}

constexpr ModelKernels make_avx2_kernels() {
  ModelKernels k = make_model_kernels<Avx2Ops, Avx2F32Ops>();
  k.packed_x_words = &avx2_packed_x_words;
  k.pack_x = &avx2_pack_x;
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
