#include "probes/kv_fill_probe.h"

#include <cstdint>
#include <vector>

#include "bindings/model_handle.h"
#include "kernels/fp8/e4m3.h"
#include "model/kv_layout.h"
#include "model/random_fill.h"

namespace troupe {
namespace {

Napi::Value ModelFillKv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelHandle* h = model_handle_arg(info, "modelFillKv");
  if (h->in_flight) throw Napi::Error::New(env, "modelFillKv: a step is running");
  Model& m = *h->model;
  const double seed = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 1;
  const float scale = info[2].IsNumber() ? info[2].As<Napi::Number>().FloatValue() : 1.0f;
  const KvLayout& L = m.kv_layout();
  const size_t n = L.num_blocks * L.page_elems();
  for (size_t l = 0; l < m.shape().layers; ++l) {
    const uint64_t key = counter_uniform_key(static_cast<uint64_t>(seed), l);
    void* p = m.kv_pages(l);
    if (L.fp8 != KvFp8::None) {
      std::vector<float> v(n);
      fill_uniform_f32(v.data(), n, key, 0, scale);
      uint8_t* c = static_cast<uint8_t*>(p);
      const float ks = m.layer_kv(l).k_scale;
      for (size_t i = 0; i < n; ++i) c[i] = L.fp8 == KvFp8::E4m3 ? e4m3_encode(v[i] / ks) : e5m2_encode(v[i] / ks);
    } else if (L.bf16) {
      fill_uniform_bf16(static_cast<uint16_t*>(p), n, key, 0, scale);
    } else {
      fill_uniform_f32(static_cast<float*>(p), n, key, 0, scale);
    }
  }
  return env.Undefined();
}

}  // namespace

void register_kv_fill_probe(Napi::Env env, Napi::Object exports) {
  exports.Set("modelFillKv", Napi::Function::New(env, ModelFillKv, "modelFillKv"));
}

}  // namespace troupe
