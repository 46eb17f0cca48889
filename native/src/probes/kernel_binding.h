// Test and tool entry points for the model kernels (native/index.ts documents them):
//   modelKernel(name, isa, args)      runs one ModelKernels entry on one ISA path
//   sampleLogits(logits, V, sampling) sampling.h on R rows, synchronously
//   counterUniform(seed, index)       the sampler's random number
//   fillUniform(out, seed, stream, offset, scale)   generator weights
//   measureReadBandwidth / measurePeak              machine limits for benchmarks
#pragma once

#include <napi.h>

#include "platform/cpu_features.h"

namespace troupe {

void register_kernel_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu);

}  // namespace troupe
