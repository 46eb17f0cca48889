// bf16 matmul, AVX2 path (Ops: gemm_ops_avx2.h, widen + FMA).
// Compiled with -mavx2 -mfma -mf16c.
#include "kernels/gemm_ops_avx2.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_avx2(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                      size_t K) {
  matmul_bf16_run<Avx2Ops>(w, xb, out, M, N, K);
}

}  // namespace troupe
