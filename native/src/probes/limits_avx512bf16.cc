// Register loops that measure this machine's limits (machine_limits.h). Compiled with
// the avx512bf16 flags; each function is called only when the CPU has what it
// uses (machine_limits.cc checks: read_streams_avx512 and fma_loop_avx512 need
// AVX-512F / BW only, bf16_dot_loop_avx512bf16 AVX-512 BF16).
#include <immintrin.h>

#include "probes/machine_limits.h"

namespace troupe {

uint64_t read_streams_avx512(const uint8_t* const* streams, size_t bytes_per_stream) {
  __m512i acc[8];
  for (int s = 0; s < 8; ++s) acc[s] = _mm512_setzero_si512();
  for (size_t off = 0; off + 64 <= bytes_per_stream; off += 64)
    for (int s = 0; s < 8; ++s) acc[s] = _mm512_add_epi64(acc[s], _mm512_loadu_si512(streams[s] + off));
  __m512i r = acc[0];
  for (int s = 1; s < 8; ++s) r = _mm512_xor_si512(r, acc[s]);
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(r));
}

float bf16_dot_loop_avx512bf16(size_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80);  // 1.0 bf16
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3c00);  // 2^-7
  for (size_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

float fma_loop_avx512(size_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(1e-7f);
  for (size_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(a, b, acc[i]);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace troupe
