// Counter-based random fill for the model generator: element i of a tensor is
// a pure function of (seed, stream, i), so a tensor written in chunks, in any
// order, or by several threads is the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {

uint64_t counter_uniform_key(uint64_t seed, uint64_t stream);
// out[i] = (2 u - 1) * scale, u = 24-bit uniform in [0, 1) from (key, offset + i).
void fill_uniform_bf16(uint16_t* out, size_t n, uint64_t key, uint64_t offset, float scale);
void fill_uniform_f32(float* out, size_t n, uint64_t key, uint64_t offset, float scale);

}  // namespace troupe
