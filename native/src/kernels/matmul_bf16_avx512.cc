// bf16 matmul, AVX-512F path (Ops: gemm_ops_avx512.h, widen + FMA).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c.
#include "kernels/gemm_ops_avx512.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_avx512(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K) {
  matmul_bf16_run<Avx512Ops>(w, xb, out, M, N, K);
}

}  // namespace troupe
