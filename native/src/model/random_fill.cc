#include "model/random_fill.h"

#include "kernels/bf16.h"

namespace troupe {
namespace {

inline uint64_t mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline float uniform_at(uint64_t key, uint64_t i, float scale) {
  const uint64_t z = mix64(key + i * 0x9E3779B97F4A7C15ull);
  const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
  return (2.0f * u - 1.0f) * scale;
}

}  // namespace

uint64_t counter_uniform_key(uint64_t seed, uint64_t stream) {
  return mix64(mix64(seed + 0x632BE59BD9B4E019ull) ^ (stream * 0xD1B54A32D192ED03ull));
}

void fill_uniform_f32(float* out, size_t n, uint64_t key, uint64_t offset, float scale) {
  for (size_t i = 0; i < n; ++i) out[i] = uniform_at(key, offset + i, scale);
}

void fill_uniform_bf16(uint16_t* out, size_t n, uint64_t key, uint64_t offset, float scale) {
  constexpr size_t kChunk = 4096;
  float buf[kChunk];
  for (size_t i0 = 0; i0 < n; i0 += kChunk) {
    const size_t c = n - i0 < kChunk ? n - i0 : kChunk;
    fill_uniform_f32(buf, c, key, offset + i0, scale);
    round_fp32_to_bf16(buf, out + i0, c);
  }
}

}  // namespace troupe
