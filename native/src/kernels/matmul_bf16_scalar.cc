// bf16 matmul, scalar path (Ops: gemm_ops_scalar.h, 8 lanes, multiply then
// add). Same lane layout and reduction tree as the AVX2 path, portable C++.
#include "kernels/gemm_ops_scalar.h"
#include "kernels/matmul_bf16_impl.h"

namespace troupe {

void matmul_bf16_scalar(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K) {
  matmul_bf16_run<ScalarOps>(w, xb, out, M, N, K);
}

}  // namespace troupe
