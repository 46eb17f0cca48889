// Dispatcher: ISA -> kernel entry point.
#include "kernels/matmul_bf16.h"

namespace troupe {

MatmulBf16Fn matmul_bf16_kernel(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return &matmul_bf16_scalar;
#if defined(TROUPE_X86)
    case Isa::Avx2: return &matmul_bf16_avx2;
    case Isa::Avx512: return &matmul_bf16_avx512;
    // The amx path's tile product is the model GEMM's (model_kernels.h); this API keeps avx512bf16's.
    case Isa::Avx512Bf16:
    case Isa::Amx: return &matmul_bf16_avx512bf16;
#endif
#if defined(TROUPE_ARM64)
    case Isa::Neon: return &matmul_bf16_neon;
    case Isa::NeonBf16: return &matmul_bf16_neon_bf16;
#endif
    default: return nullptr;
  }
}

}  // namespace troupe
