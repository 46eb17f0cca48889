// bf16 matmul, neon path (Ops: gemm_ops_neon.h, widen + FMA).
#include "kernels/gemm_ops_neon.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_neon(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                    size_t K) {
  matmul_bf16_run<NeonOps>(w, xb, out, M, N, K);
}

}  // namespace troupe
