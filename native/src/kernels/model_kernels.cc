// Dispatcher: ISA -> the forward pass's kernel table.
#include "kernels/model_kernels.h"

#include "platform/amx_permission.h"

namespace troupe {

const ModelKernels* model_kernels(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return model_kernels_scalar();
#if defined(TROUPE_X86)
    case Isa::Avx2: return model_kernels_avx2();
    case Isa::Avx512: return model_kernels_avx512();
    case Isa::Avx512Bf16: return model_kernels_avx512bf16();
    // Tiles need the process's permission first (Linux); without it the path is unavailable.
    case Isa::Amx: return amx_request_permission() ? model_kernels_amx() : nullptr;
#endif
#if defined(TROUPE_ARM64)
    case Isa::Neon: return model_kernels_neon();
    case Isa::NeonBf16: return model_kernels_neon_bf16();
#endif
    default: return nullptr;
  }
}

}  // namespace troupe
