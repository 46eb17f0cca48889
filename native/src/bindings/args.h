// Argument checking for the JS bindings: every bad argument becomes a JS
// TypeError / RangeError with a message naming the function and the argument.
#pragma once

#include <napi.h>

#include <cstddef>
#include <string>

#include "platform/cpu_features.h"
#include "platform/isa.h"

namespace troupe {

// A typed array's elements, viewed in place (no copy).
template <typename T>
struct ArrayView {
  T* data;
  size_t length;
};

// info[index] must be a Uint16Array / Float32Array; `what` describes it for messages.
ArrayView<uint16_t> uint16_array_arg(const Napi::CallbackInfo& info, size_t index,
                                     const char* fn, const char* what);
ArrayView<float> float32_array_arg(const Napi::CallbackInfo& info, size_t index,
                                   const char* fn, const char* what);

// info[index] must be a non-negative safe integer.
size_t dim_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name);

// `length` must equal a * b (overflow checked); else RangeError naming the shape.
void expect_length(Napi::Env env, const char* fn, const char* array, size_t length, size_t a,
                   const char* a_name, size_t b, const char* b_name);

// An ISA name chosen by the user (`label` says where: "TROUPE_ISA", "matmulBf16: isa").
// undefined / "" -> the best ISA of `cpu`. Non-string -> TypeError, unknown name ->
// RangeError, a path this CPU cannot run -> Error naming what the CPU lacks and has.
Isa isa_arg(Napi::Env env, const Napi::Value& value, const CpuFeatures& cpu,
            const std::string& label);

// "Float32Array", "number", "undefined", ... for messages.
std::string describe(const Napi::Value& value);

}  // namespace troupe
