// Benchmark entry points of the probes addon: gemmBench, sampleBench (bench_binding.cc).
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

void register_bench_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
