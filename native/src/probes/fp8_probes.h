// The FP8 kernels' test entry points (fp8_probes.cc): fp8Gemm, fp8QuantizeActivations.
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

void register_fp8_probes(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
