// The BFDOT peak loop (machine_limits.h), compiled with FEAT_BF16; called only
// when the CPU has it (machine_limits.cc checks).
#include <arm_neon.h>

#include "probes/machine_limits.h"

namespace troupe {

float bf16_dot_loop_neon_bf16(size_t iters) {
  float32x4_t acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = vdupq_n_f32(static_cast<float>(i));
  // The bits pass through a register: GCC 12 would otherwise materialize 0x3c00 with an
  // fp16 FMOV immediate, which needs FEAT_FP16 (not implied by this TU's flags).
  uint16_t one = 0x3f80, small = 0x3c00;  // 1.0, 2^-7
  __asm__("" : "+r"(one), "+r"(small));
  const bfloat16x8_t a = vreinterpretq_bf16_u16(vdupq_n_u16(one));
  const bfloat16x8_t b = vreinterpretq_bf16_u16(vdupq_n_u16(small));
  for (size_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = vbfdotq_f32(acc[i], a, b);
  }
  float32x4_t s = acc[0];
  for (int i = 1; i < 16; ++i) s = vaddq_f32(s, acc[i]);
  return vaddvq_f32(s);
}

}  // namespace troupe
