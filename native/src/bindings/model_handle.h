// What a JS model handle (the External modelCreate returns) points at, and the
// type tag every handle carries. Both addons are built from one troupe_core by
// the same cmake-js build, and loadProbes() loads the probes addon from beside
// the main one, so a tagged handle's Model is the same type in both: the probes
// addon may act on a model the main addon made (probes/kv_fill_probe.h).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "bindings/args.h"
#include "model/model.h"

namespace troupe {

struct ModelHandle {
  std::unique_ptr<Model> model;   // null once released
  Napi::ObjectReference weights;  // keeps the weight arrays alive while the model uses them
  bool in_flight = false;         // a step is running on a worker thread
};

// Names "a Troupe ModelHandle" to napi_check_object_type_tag (a fixed random value).
constexpr napi_type_tag kModelHandleTag = {0x7f3c1e5a9b2d4c61ULL, 0xa4e8d2c6b0f91357ULL};

// The ModelHandle in `value` (any model, released or not), or nullptr when
// `value` is not an External carrying kModelHandleTag.
inline ModelHandle* tagged_model_handle(Napi::Env env, const Napi::Value& value) {
  if (!value.IsExternal()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(env, value, &kModelHandleTag, &tagged) != napi_ok || !tagged) return nullptr;
  return value.As<Napi::External<ModelHandle>>().Data();
}

// The live model handle in info[0]; throws naming `fn` when it is not one, or was released.
inline ModelHandle* model_handle_arg(const Napi::CallbackInfo& info, const char* fn) {
  ModelHandle* h = tagged_model_handle(info.Env(), info[0]);
  if (h == nullptr)
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": handle must be a model handle from modelCreate, got " + describe(info[0]));
  if (!h->model) throw Napi::Error::New(info.Env(), std::string(fn) + ": the model was released");
  return h;
}

}  // namespace troupe
