// Limit probes of the avx2 path (machine_limits.h), compiled with only the avx2 flags
// so that they run on every AVX2 CPU.
#include <immintrin.h>

#include "probes/machine_limits.h"

namespace troupe {

uint64_t read_streams_avx2(const uint8_t* const* streams, size_t bytes_per_stream) {
  __m256i acc[8];
  for (int s = 0; s < 8; ++s) acc[s] = _mm256_setzero_si256();
  for (size_t off = 0; off + 32 <= bytes_per_stream; off += 32)
    for (int s = 0; s < 8; ++s)
      acc[s] = _mm256_add_epi64(acc[s], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(streams[s] + off)));
  __m256i r = acc[0];
  for (int s = 1; s < 8; ++s) r = _mm256_xor_si256(r, acc[s]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), r);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

float fma_loop_avx2(size_t iters) {
  // 12 accumulators + 2 operands: 14 of the 16 ymm registers (no spills, no EVEX).
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(1.0f), b = _mm256_set1_ps(1e-7f);
  for (size_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(a, b, acc[i]);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  return _mm_cvtss_f32(_mm_add_ps(h, _mm_movehl_ps(h, h)));
}

}  // namespace troupe
