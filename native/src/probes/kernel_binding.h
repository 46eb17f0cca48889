// Test and benchmark entry points for the model kernels (native/probes.ts documents them):
//   modelKernel(name, isa, args)      runs one ModelKernels entry on one ISA path
//   sampleLogits(logits, V, sampling) sampling/sampling.h on R rows, synchronously
//   counterUniform(seed, index)       the sampler's random number
//   measureReadBandwidth / measurePeak              machine limits for benchmarks (machine_limits.h)
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

void register_kernel_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
