// Dispatcher: ISA -> the FP8 GEMM (VBMI checked here: isa.h's paths do not need it).
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {

const Fp8Kernels* fp8_kernels(Isa isa, const CpuFeatures& cpu) {
  switch (isa) {
    case Isa::Scalar: return fp8_kernels_scalar();
#if defined(TROUPE_X86)
    case Isa::Avx2: return fp8_kernels_avx2();
    case Isa::Avx512: return fp8_kernels_avx512();
    case Isa::Avx512Bf16:
    case Isa::Amx:  // FP8 GEMMs keep the avx512bf16 arithmetic on the amx path
      return cpu.avx512vbmi ? fp8_kernels_avx512bf16_vbmi() : fp8_kernels_avx512bf16_table();
#endif
#if defined(TROUPE_ARM64)
    case Isa::Neon: return fp8_kernels_neon();
    case Isa::NeonBf16: return fp8_kernels_neon_bf16();
#endif
    default: return nullptr;
  }
}

const Fp8Kernels* fp8_kernels_table(Isa isa) {
#if defined(TROUPE_X86)
  if (isa == Isa::Avx512Bf16 || isa == Isa::Amx) return fp8_kernels_avx512bf16_table();
  if (isa == Isa::Avx2) return fp8_kernels_avx2_table();
#endif
  return fp8_kernels(isa, CpuFeatures{});
}

}  // namespace troupe
