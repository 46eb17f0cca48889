// One linear layer's weight as the forward step reads it, whatever its
// storage: bf16 bits or fp32 (by the model's mode), or FP8 e4m3 codes with
// scales (kernels/fp8/gemm_fp8_impl.h). The matrix is [N, K] row-major (HF Linear).
//
// An FP8 linear's input is quantized per token before its GEMM (dynamic:
// scale from the row's absmax, clamped by act_ub; static: input_scale), so a
// token's result never depends on the rest of the batch.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace troupe {

enum class WeightType : uint8_t { Bf16, F32, E4m3 };

struct Linear {
  const void* w = nullptr;
  WeightType type = WeightType::Bf16;
  const float* scale = nullptr;  // E4m3: [N] per output channel (a per-tensor scale repeated)
  float input_scale = 0.0f;      // E4m3: > 0 a static activation scale; 0 dynamic per token
  float act_ub = INFINITY;       // E4m3 dynamic: absmax clamp (activation_scale_ub)
  size_t rows = 0;               // rows of w from this view's first (an FP8 layout counts its row groups from there)

  bool fp8() const { return type == WeightType::E4m3; }
  size_t elem_bytes() const { return type == WeightType::F32 ? 4 : type == WeightType::Bf16 ? 2 : 1; }
  // The same linear restricted to rows [n0, rows) (row stride K); n0 a multiple of 4 for FP8
  // (the avx2 layout's row groups: kernels/fp8/f16c_row_blocks.h).
  Linear rows_from(size_t n0, size_t K) const {
    Linear r = *this;
    r.w = static_cast<const uint8_t*>(w) + n0 * K * elem_bytes();
    if (scale != nullptr) r.scale = scale + n0;
    r.rows = rows - n0;
    return r;
  }
  // The same linear restricted to rows [0, n).
  Linear first_rows(size_t n) const {
    Linear r = *this;
    r.rows = n;
    return r;
  }
};

// A linear's prepared input for M rows: bf16 bits (bf16 weights, or FP8 whose
// rows were quantized to e4m3 values, then `scales` [M] holds each row's
// scale) or fp32 (float32 mode).
struct LinearInput {
  const void* x = nullptr;
  const float* scales = nullptr;
};

}  // namespace troupe
