// bf16 matmul, AVX-512 BF16 path (Ops: gemm_ops_avx512bf16.h, vdpbf16ps).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mfma.
#include "kernels/gemm_ops_avx512bf16.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_avx512bf16(const uint16_t* w, const uint16_t* xb, float* out, size_t M,
                            size_t N, size_t K) {
  matmul_bf16_run<Avx512Bf16Ops>(w, xb, out, M, N, K);
}

}  // namespace troupe
