// bf16 <-> fp32 conversions shared by the kernel bindings (baseline code).
// bf16 is the top 16 bits of an IEEE fp32: sign, 8-bit exponent, 7-bit mantissa.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {

// Round-to-nearest-even fp32 -> bf16 bits. NaN stays NaN (quiet bit set, sign
// and top payload kept); overflow rounds to +-Inf like IEEE; denormals are
// rounded, not flushed. test/native/bf16.ts mirrors this exactly.
void round_fp32_to_bf16(const float* src, uint16_t* dst, size_t n);

}  // namespace troupe
