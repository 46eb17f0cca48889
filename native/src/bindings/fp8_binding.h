// FP8 exports of the addon: the weight quantizer of the loaders (online
// quantization) and the FP8 part of modelStats.
// The FP8 GEMM and the activation quantizer on their own are probes (probes/fp8_probes.h).
#pragma once

#include <napi.h>

#include "model/model.h"

namespace troupe {

// fp8QuantizeWeights(src, rows, cols, codes, scales)
void register_fp8_exports(Napi::Env env, Napi::Object exports);

// Sets modelStats' weight figures: linearWeightBytes (every linear's matrix, the lm head
// included), linearDtypes {qkv, o, gateUp, down: per layer; lmHead}, fp8Kernel.
void set_linear_stats(Napi::Env env, Napi::Object o, const Model& m);

}  // namespace troupe
