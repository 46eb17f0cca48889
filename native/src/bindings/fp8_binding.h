// FP8 exports of the addon: the FP8 GEMM and the quantizers for tests and the
// loaders (online quantization), and the FP8 part of modelStats.
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"
#include "model/model.h"

namespace troupe {

void register_fp8_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

// Sets modelStats' weight figures: linearWeightBytes (every linear's matrix, the lm head
// included), linearDtypes {qkv, o, gateUp, down: per layer; lmHead}, fp8Kernel.
// modelFillKv(handle, seed, scale): every KV page of every layer set to seeded uniform values in
// [-scale, scale) (FP8 caches: their codes). Benchmarks measure decode at a long context
// without its prefill (16K tokens of llama-3.2-1b take minutes here).
Napi::Value fill_kv(const Napi::CallbackInfo& info, Model& m);

void set_linear_stats(Napi::Env env, Napi::Object o, const Model& m);

}  // namespace troupe
