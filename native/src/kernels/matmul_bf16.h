// bf16 matrix product: out[m, n] = sum_k x[m, k] * w[n, k], fp32 accumulation.
//
// Memory layouts (row-major, contiguous, no padding):
//   w   [N, K]  bf16 bits   one row per output feature (HF Linear weight layout)
//   xb  [M, K]  bf16 bits   activations, already rounded to bf16 (bf16.h)
//   out [M, N]  fp32
//
// Batch invariance: out[m, n] is computed from row m of xb, row n of w and K
// only, by the same instruction sequence whatever M, N or the blocking: each
// output owns its accumulator, K is consumed in chunks in increasing order,
// the tail chunk is zero padded, and the lanes are reduced in a fixed tree.
// Different ISAs round differently; within one ISA results are bitwise stable.
#pragma once

#include <cstddef>
#include <cstdint>

#include "platform/isa.h"

namespace troupe {

using MatmulBf16Fn = void (*)(const uint16_t* w, const uint16_t* xb, float* out, size_t M,
                              size_t N, size_t K);

// One per ISA translation unit (src/kernels/matmul_bf16_<isa>.cc).
void matmul_bf16_scalar(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K);
#if defined(TROUPE_X86)
void matmul_bf16_avx2(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                      size_t K);
void matmul_bf16_avx512(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K);
void matmul_bf16_avx512bf16(const uint16_t* w, const uint16_t* xb, float* out, size_t M,
                            size_t N, size_t K);
#endif

#if defined(TROUPE_ARM64)
void matmul_bf16_neon(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                      size_t K);
void matmul_bf16_neon_bf16(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                           size_t K);
#endif

// The kernel for `isa`, or nullptr when this build lacks it. The caller checks
// that the CPU supports `isa` (isa_supported) before calling the kernel.
MatmulBf16Fn matmul_bf16_kernel(Isa isa);

}  // namespace troupe
