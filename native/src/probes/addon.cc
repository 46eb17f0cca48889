// The probes addon (troupe_probes.node): what tests and benchmarks call beside the
// model, built from the same sources as troupe_native.node by the same cmake-js
// compile; `troupe serve` never loads it. Context-aware like the main addon, and it
// sees the same CPU: detected features capped by TROUPE_CPU_FEATURES; an ISA argument
// left undefined means the best one of that CPU.
//
// Exports (raw; native/probes.ts types them):
//   modelKernel, sampleLogits, counterUniform, measureReadBandwidth, measurePeak   kernel_binding.h
//   gemmBench, sampleBench                                                        bench_binding.h
//   fp8Gemm, fp8QuantizeActivations                                               fp8_probes.h
//   matmulBf16                                                                    matmul_bf16_probe.h
//   modelFillKv                                                                   kv_fill_probe.h
#include <napi.h>

#include "platform/cpu_features.h"
#include "probes/bench_binding.h"
#include "probes/fp8_probes.h"
#include "probes/kernel_binding.h"
#include "probes/kv_fill_probe.h"
#include "probes/matmul_bf16_probe.h"

namespace troupe {

class TroupeProbes : public Napi::Addon<TroupeProbes> {
 public:
  TroupeProbes(Napi::Env env, Napi::Object exports) : cpu_(usable_cpu_features(detect_cpu_features())) {
    register_kernel_exports(env, exports, cpu_);
    register_bench_exports(env, exports, cpu_);
    register_fp8_probes(env, exports, cpu_);
    register_matmul_bf16_probe(env, exports, cpu_);
    register_kv_fill_probe(env, exports);
  }

 private:
  const CpuFeatures cpu_;
};

}  // namespace troupe

using troupe::TroupeProbes;
NODE_API_NAMED_ADDON(troupe_probes, TroupeProbes)
