// Module entry of troupe_native.node, the addon `troupe serve` loads (the tests' and
// benchmarks' entry points are the probes addon: probes/addon.cc). Context-aware: all state lives in one TroupeAddon instance per
// Node environment (main thread, each worker thread), created by Node when
// that environment loads the addon; there are no mutable globals.
//
// Exports (raw; native/index.ts wraps them with types and TROUPE_ISA handling):
//   cpuFeatures(): { avx2, fma, f16c, ... }   what kernels may use: detected, capped by TROUPE_CPU_FEATURES
//   detectedCpuFeatures(): { ... }            what cpuid and the OS report, before the cap
//   availableIsas(): string[]          best first, always ends with 'scalar'
//   bestIsa(): string
//   resolveIsa(name?: string, label?: string): string   validates a requested ISA
//   shm*(...), link*(...)                                 collectives, see collectives_binding.h
//   allocAligned, mapFile, model*, fillUniform, fp8QuantizeWeights   see model_binding.h
#include <napi.h>

#include "bindings/args.h"
#include "bindings/collectives_binding.h"
#include "platform/cpu_features.h"
#include "platform/isa.h"
#include "bindings/model_binding.h"

namespace troupe {

class TroupeAddon : public Napi::Addon<TroupeAddon> {
 public:
  TroupeAddon(Napi::Env env, Napi::Object exports)
      : detected_(detect_cpu_features()), cpu_(usable_cpu_features(detected_)) {
    DefineAddon(exports, {
                             InstanceMethod("cpuFeatures", &TroupeAddon::CpuFeaturesJs),
                             InstanceMethod("detectedCpuFeatures", &TroupeAddon::DetectedCpuFeaturesJs),
                             InstanceMethod("availableIsas", &TroupeAddon::AvailableIsas),
                             InstanceMethod("bestIsa", &TroupeAddon::BestIsa),
                             InstanceMethod("resolveIsa", &TroupeAddon::ResolveIsa),
                         });
    register_collectives(env, exports);  // shm*, link*: see collectives_binding.h
    register_model_exports(env, exports, cpu_);  // model*, kernels, sampling: see model_binding.h
  }

 private:
  static Napi::Object FeaturesObject(Napi::Env env, const CpuFeatures& features) {
    Napi::Object o = Napi::Object::New(env);
    for (int i = 0; i < kCpuFeatureFieldCount; ++i)
      o.Set(kCpuFeatureFields[i].name, features.*kCpuFeatureFields[i].flag);
    return o;
  }
  Napi::Value CpuFeaturesJs(const Napi::CallbackInfo& info) { return FeaturesObject(info.Env(), cpu_); }
  Napi::Value DetectedCpuFeaturesJs(const Napi::CallbackInfo& info) {
    return FeaturesObject(info.Env(), detected_);
  }

  Napi::Value AvailableIsas(const Napi::CallbackInfo& info) {
    Napi::Array a = Napi::Array::New(info.Env());
    uint32_t n = 0;
    for (Isa isa_i : kIsaPreference)
      if (isa_supported(isa_i, cpu_)) a.Set(n++, isa_name(isa_i));
    return a;
  }

  Napi::Value BestIsa(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), isa_name(best_isa(cpu_)));
  }

  Napi::Value ResolveIsa(const Napi::CallbackInfo& info) {
    const std::string label = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "isa";
    return Napi::String::New(info.Env(), isa_name(isa_arg(info.Env(), info[0], cpu_, label)));
  }

  const CpuFeatures detected_;
  // Every dispatch decision reads this one (the cap applied), never detected_.
  const CpuFeatures cpu_;
};

}  // namespace troupe

using troupe::TroupeAddon;
NODE_API_NAMED_ADDON(troupe_native, TroupeAddon)
