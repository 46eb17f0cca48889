// The FP8 linear's GEMM per ISA (kernels/fp8/gemm_fp8_impl.h has what it computes).
// A separate table from ModelKernels: the avx512bf16 path has two FP8
// kernels, picked by whether the CPU has AVX512-VBMI (the in-register
// conversion), and the avx2 path converts through F16C with a table kernel
// beside it for the tests; each pair gives the same bits.
#pragma once

#include <cstddef>
#include <cstdint>

#include "platform/cpu_features.h"
#include "platform/isa.h"

namespace troupe {

struct Fp8Kernels {
  // out[m, n], n in [n0, n1): sum over `segments` K ranges of fp32(P_s * fp32(xs[m] * ws[n])).
  // rows: the rows of w from its first as prepacked (a layout may group rows: the last
  // group is the short one).
  void (*gemm)(const uint8_t* w, size_t rows, const uint16_t* xq, const float* xs, const float* ws, float* out,
               size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments);
  // Reorders the codes of w [N, K] in place into the layout `gemm` reads (null: K order as
  // stored). Done once at load; `layout` names it (null when none), so a weight array is
  // never reordered twice.
  void (*prepack)(uint8_t* w, size_t N, size_t K, size_t segments);
  const char* layout;
  const char* name;  // "avx512bf16-vbmi", "avx512bf16-table", ... (stats, benchmarks)
  // gemm does not convert NaN codes (0x7f, 0xff): models refuse them at load, and fp8Gemm
  // hands arrays holding any to the table kernel.
  bool refuses_nan = false;
  // Optional (null except on the avx2 path): gemm over x packed once per GEMM of
  // linear_gemm.h instead of per tile, for calls of at least packed_min_rows rows; the
  // same bits as gemm. packed_x_words and pack_x as ModelKernels' (model_kernels.h).
  size_t (*packed_x_words)(size_t M, size_t K, size_t segments) = nullptr;
  void (*pack_x)(const uint16_t* xq, size_t M, size_t K, size_t segments, size_t b0, size_t b1,
                 uint32_t* packed) = nullptr;
  void (*gemm_packed)(const uint8_t* w, size_t rows, const uint32_t* packed, const float* xs, const float* ws,
                      float* out, size_t M, size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) = nullptr;
  size_t packed_min_rows = 0;
};

// The fastest kernel for `isa` on `cpu` (VBMI is a feature of `cpu`, so the feature cap
// applies), or nullptr when this build lacks it.
const Fp8Kernels* fp8_kernels(Isa isa, const CpuFeatures& cpu);
// The portable table-conversion kernel of `isa` (the same bits as fp8_kernels(isa); tests
// compare the two, and it serves avx512bf16 CPUs without VBMI).
const Fp8Kernels* fp8_kernels_table(Isa isa);

const Fp8Kernels* fp8_kernels_scalar();
#if defined(TROUPE_ARM64)
const Fp8Kernels* fp8_kernels_neon();
const Fp8Kernels* fp8_kernels_neon_bf16();
#endif
#if defined(TROUPE_X86)
const Fp8Kernels* fp8_kernels_avx2();
const Fp8Kernels* fp8_kernels_avx2_table();
const Fp8Kernels* fp8_kernels_avx512();
const Fp8Kernels* fp8_kernels_avx512bf16_table();
const Fp8Kernels* fp8_kernels_avx512bf16_vbmi();
#endif

}  // namespace troupe
