// The bf16 matmul on its own (a probe: tests compare it with a reference per ISA):
// checks arguments, rounds x to bf16, dispatches.
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

// matmulBf16(w: Uint16Array [N,K] bf16 bits, x: Float32Array [M,K],
//            out: Float32Array [M,N], M, N, K, isa?: string): undefined
// isa undefined: the best ISA of the (capped) CPU.
void register_matmul_bf16_probe(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
