// FP8 exports of the addon: the weight quantizer of the loaders (online
// quantization), the FP8 part of modelStats, and modelFillKv (FP8 caches hold codes).
// The FP8 GEMM and the activation quantizer on their own are probes (probes/fp8_probes.h).
#pragma once

#include <napi.h>

#include "model/model.h"

namespace troupe {

// fp8QuantizeWeights(src, rows, cols, codes, scales)
void register_fp8_exports(Napi::Env env, Napi::Object exports);

// modelFillKv(handle, seed, scale): every KV page of every layer set to seeded uniform values in
// [-scale, scale) (FP8 caches: their codes), so a benchmark decodes at a long context
// without running its prefill.
Napi::Value fill_kv(const Napi::CallbackInfo& info, Model& m);

// Sets modelStats' weight figures: linearWeightBytes (every linear's matrix, the lm head
// included), linearDtypes {qkv, o, gateUp, down: per layer; lmHead}, fp8Kernel.
void set_linear_stats(Napi::Env env, Napi::Object o, const Model& m);

}  // namespace troupe
