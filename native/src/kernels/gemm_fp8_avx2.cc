// The FP8 GEMM for the avx2 path: codes (recoded and their row blocks
// interleaved at load: fp8/f16c_row_blocks.h) widened in registers through F16C
// (fp8/gemm_fp8_ops_f16c.h) for M < Fp8F16cOps::kSmallM + 1 rows, bf16 panels
// (kernels/gemm_strips_avx2.h) from there on; and the table kernel
// (Fp8TableOps<Avx2Ops>, codes as stored) that tests compare it with.
#include "kernels/gemm_ops_avx2.h"
#include "kernels/fp8/gemm_fp8_ops_f16c.h"
#include "kernels/fp8/gemm_fp8_ops_table.h"
#include "kernels/fp8/gemm_fp8_impl.h"
#include "kernels/fp8/f16c_row_blocks.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {
namespace {

// e4m3 rows [N, K] in the F16C layout: each panel's rows over a K segment
// widened once to their bf16 bits, into a per-thread buffer of rows of L8 (L rounded up to 8).
struct StripPanelsF16c {
  static constexpr bool kInPlace = false;
  const uint8_t* w;
  size_t N, K;
  const uint16_t* rows(size_t p0, size_t np, size_t k0, size_t k1, size_t& ld) const {
    static thread_local std::vector<uint16_t> panel;
    ld = round_up8(k1 - k0);
    if (panel.size() < np * ld) panel.resize(np * ld);
    f16c_widen_rows(w, N, K, p0, np, k0, k1, panel.data(), ld);
    return panel.data();
  }
};

// xq's M rows as fp32 (exact), in a per-thread buffer.
const float* widen_rows(const uint16_t* xq, size_t M, size_t K) {
  static thread_local std::vector<float> x;
  if (x.size() < M * K) x.resize(M * K);
  size_t i = 0;
  for (; i + 8 <= M * K; i += 8) _mm256_storeu_ps(x.data() + i, load_bf16(xq + i));
  for (; i < M * K; ++i) {
    const uint32_t b = static_cast<uint32_t>(xq[i]) << 16;
    std::memcpy(x.data() + i, &b, sizeof b);
  }
  return x.data();
}

void gemm_fp8_avx2(const uint8_t* w, size_t N, const uint16_t* xq, const float* xs, const float* ws, float* out,
                   size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  using Ops = Fp8F16cOps;
  if (segments == 0) segments = 1;
  if (M == 1) return f16c_blocks<1, Ops::kNB1>(w, N, widen_rows(xq, M, K), xs, ws, out, M, n0, n1, ldo, K, segments);
  if (M <= Ops::kSmallM)
    return f16c_blocks<Ops::kMBs, Ops::kNBs>(w, N, widen_rows(xq, M, K), xs, ws, out, M, n0, n1, ldo, K, segments);
  StripPanelsF16c panels{w, N, K};
  gemm_strips_avx2(panels, xq, xs, ws, out, M, n0, n1, ldo, K, segments);
}

void gemm_fp8_avx2_packed(const uint8_t* w, size_t N, const uint32_t* packed, const float* xs, const float* ws,
                          float* out, size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  StripPanelsF16c panels{w, N, K};
  gemm_strips_avx2_packed(panels, strip_packed_floats(packed), xs, ws, out, M, n0, n1, ldo, K, segments);
}

}  // namespace

const Fp8Kernels* fp8_kernels_avx2() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_avx2,         &F16cRowBlocks::prepack, "chunk32-f16c-recoded-rows4",
                                     "avx2-f16c",            true,                    &strip_packed_x_words,
                                     &strip_pack_x_rows,     &gemm_fp8_avx2_packed,   Fp8F16cOps::kSmallM + 1};
  return &kTable;
}

const Fp8Kernels* fp8_kernels_avx2_table() {
  static constexpr Fp8Kernels kTable{&gemm_fp8_run<Fp8TableOps<Avx2Ops>>, nullptr, nullptr, "avx2-table"};
  return &kTable;
}

}  // namespace troupe
