// JS bindings of the model (native/model-raw.ts documents each export):
//   allocAligned(bytes): ArrayBuffer                 anonymous page-aligned memory
//   mapFile(path): ArrayBuffer                       a read-only file mapping (weights, as an option)
//   modelCreate(desc): handle                        weights stay owned by desc's arrays
//   modelStep(handle, input): Promise<output>        runs off the JS thread (AsyncWorker)
//   modelStats(handle): counters
//   modelRelease(handle)                             frees the KV cache and the threads now
//   fillUniform(out, seed, stream, offset, scale)    counter-based random weights (troupe make-model)
//   fp8QuantizeWeights(...)                          bindings/fp8_binding.h
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

// Adds the exports above to `exports` (called once per addon instance).
void register_model_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
