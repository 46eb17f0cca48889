#include "kernels/fp8/e4m3.h"

namespace troupe {

void quantize_rows_e4m3(const float* x, uint16_t* xq, float* xs, size_t r0, size_t r1, size_t K,
                        float ub, float static_scale) {
  for (size_t r = r0; r < r1; ++r) {
    const float* row = x + r * K;
    float s = static_scale;
    if (!(s > 0.0f)) {
      float amax = 0.0f;  // a > amax ? a : amax is fmax(amax, a) here (amax is never NaN)
      for (size_t k = 0; k < K; ++k) {
        const float a = std::fabs(row[k]);
        amax = a > amax ? a : amax;
      }
      s = fp8_activation_scale(amax, ub);
    }
    xs[r] = s;
    uint16_t* q = xq + r * K;
    for (size_t k = 0; k < K; ++k) q[k] = e4m3_round_bf16_bits(row[k] / s);
  }
}

void quantize_weight_rows_e4m3(const void* w, bool bf16, uint8_t* codes, float* scales, size_t r0,
                               size_t r1, size_t K) {
  auto at = [&](size_t i) {
    return bf16 ? bits_float(static_cast<uint32_t>(static_cast<const uint16_t*>(w)[i]) << 16)
                : static_cast<const float*>(w)[i];
  };
  for (size_t r = r0; r < r1; ++r) {
    // a > amax ? a : amax is fmax(amax, a) here (amax is never NaN, a NaN a loses
    // either way); GCC 12's aarch64 vectorizer crashes on this fmax reduction.
    float amax = 0.0f;
    for (size_t k = 0; k < K; ++k) {
      const float a = std::fabs(at(r * K + k));
      amax = a > amax ? a : amax;
    }
    const float s = amax > 0.0f ? amax / kE4m3Max : 1.0f;
    scales[r] = s;
    for (size_t k = 0; k < K; ++k) codes[r * K + k] = e4m3_encode(at(r * K + k) / s);
  }
}

}  // namespace troupe
