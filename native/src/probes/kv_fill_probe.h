// Fills a model's KV cache with seeded values, so a benchmark decodes at a long
// context without running its prefill (bench/fp8.bench.ts). The model is one the
// main addon made: its handle's type tag says so (bindings/model_handle.h).
#pragma once

#include <napi.h>

namespace troupe {

// modelFillKv(handle, seed, scale): every KV page of every layer set to seeded uniform
// values in [-scale, scale) (FP8 caches: their codes of value / k_scale). Refused while
// a step runs on the model, or after it was released.
void register_kv_fill_probe(Napi::Env env, Napi::Object exports);

}  // namespace troupe
