#include "kernels/bf16.h"

#include <cstring>

namespace troupe {

void round_fp32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  // Branch-free so the compiler vectorizes it even at the baseline ISA.
  for (size_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &src[i], sizeof u);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // ties go to the even bf16
    const uint32_t quiet_nan = (u >> 16) | 0x0040u;  // NaN: keep it a NaN after truncation
    const bool is_nan = (u & 0x7fffffffu) > 0x7f800000u;
    dst[i] = static_cast<uint16_t>(is_nan ? quiet_nan : rounded);
  }
}

}  // namespace troupe
