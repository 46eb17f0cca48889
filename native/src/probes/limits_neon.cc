// Register loops that measure an ARM64 machine's limits (machine_limits.h),
// baseline Advanced SIMD only (any ARM64 CPU): the read-bandwidth streams and
// the fp32 FMA peak. The BFDOT peak is in limits_neon_bf16.cc.
#include <arm_neon.h>

#include "probes/machine_limits.h"

namespace troupe {

uint64_t read_streams_neon(const uint8_t* const* streams, size_t bytes_per_stream) {
  uint64x2_t acc[8];
  for (int s = 0; s < 8; ++s) acc[s] = vdupq_n_u64(0);
  for (size_t off = 0; off + 64 <= bytes_per_stream; off += 64)
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const uint8_t* p = streams[s] + off;
      const uint64x2_t a = vaddq_u64(vld1q_u64(reinterpret_cast<const uint64_t*>(p)),
                                     vld1q_u64(reinterpret_cast<const uint64_t*>(p + 16)));
      const uint64x2_t b = vaddq_u64(vld1q_u64(reinterpret_cast<const uint64_t*>(p + 32)),
                                     vld1q_u64(reinterpret_cast<const uint64_t*>(p + 48)));
      acc[s] = vaddq_u64(acc[s], vaddq_u64(a, b));
    }
  uint64x2_t r = acc[0];
  for (int s = 1; s < 8; ++s) r = veorq_u64(r, acc[s]);
  return vgetq_lane_u64(r, 0) ^ vgetq_lane_u64(r, 1);
}

float fma_loop_neon(size_t iters) {
  float32x4_t acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = vdupq_n_f32(static_cast<float>(i));
  const float32x4_t a = vdupq_n_f32(1.0f), b = vdupq_n_f32(1e-7f);
  for (size_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = vfmaq_f32(acc[i], a, b);
  }
  float32x4_t s = acc[0];
  for (int i = 1; i < 16; ++i) s = vaddq_f32(s, acc[i]);
  return vaddvq_f32(s);
}

}  // namespace troupe
