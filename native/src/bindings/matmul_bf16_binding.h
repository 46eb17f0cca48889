// JS binding of the bf16 matmul: checks arguments, rounds x to bf16, dispatches.
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

// matmulBf16(w: Uint16Array [N,K] bf16 bits, x: Float32Array [M,K],
//            out: Float32Array [M,N], M, N, K, isa?: string): undefined
Napi::Value matmul_bf16_js(const Napi::CallbackInfo& info, const CpuFeatures& cpu);

}  // namespace troupe
