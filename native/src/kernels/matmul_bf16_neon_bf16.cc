// bf16 matmul, neon-bf16 path (Ops: gemm_ops_neon_bf16.h, BFDOT).
#include "kernels/gemm_ops_neon_bf16.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_neon_bf16(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                    size_t K) {
  matmul_bf16_run<NeonBf16Ops>(w, xb, out, M, N, K);
}

}  // namespace troupe
