// The AMX bf16 peak probe (machine_limits.h), compiled with the amx flags; called
// only when the CPU has AMX-BF16 and the process holds the tile permission.
//   tmm0..3  C (16 x 16 fp32)   tmm4, 5  A (16 x 32 bf16)   tmm6, 7  B (16 pair rows)
#include <immintrin.h>

#include <cstring>

#include "probes/machine_limits.h"

namespace troupe {

float amx_bf16_loop(size_t iters) {
  struct alignas(64) {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  alignas(64) uint16_t ones[16 * 32];
  for (uint16_t& v : ones) v = 0x3c00;  // 2^-7 in bf16
  alignas(64) float c[16 * 16];
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  _tile_loadd(4, ones, 64);
  _tile_loadd(5, ones, 64);
  _tile_loadd(6, ones, 64);
  _tile_loadd(7, ones, 64);
  for (size_t it = 0; it < iters; ++it) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 64);
  float keep = c[0];
  _tile_stored(3, c, 64);
  keep += c[255];
  _tile_release();
  return keep;
}

}  // namespace troupe
