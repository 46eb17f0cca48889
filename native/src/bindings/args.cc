#include "bindings/args.h"

#include <cmath>

namespace troupe {
namespace {

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

template <typename T>
ArrayView<T> typed_array_arg(const Napi::CallbackInfo& info, size_t index, const char* fn,
                             const char* what, napi_typedarray_type want) {
  const Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + what + " must be a " +
                                               typed_array_name(want) + ", got " + describe(v));
  }
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return ArrayView<T>{a.Data(), a.ElementLength()};
}

}  // namespace

std::string describe(const Napi::Value& v) {
  if (v.IsTypedArray()) return typed_array_name(v.As<Napi::TypedArray>().TypedArrayType());
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "Array";
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsBuffer()) return "Buffer";
  if (v.IsNumber()) return "number " + v.ToString().Utf8Value();
  if (v.IsString()) return "string '" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsBoolean()) return "boolean";
  if (v.IsBigInt()) return "bigint";
  if (v.IsFunction()) return "function";
  if (v.IsSymbol()) return "symbol";
  return "object";
}

ArrayView<uint16_t> uint16_array_arg(const Napi::CallbackInfo& info, size_t index,
                                     const char* fn, const char* what) {
  return typed_array_arg<uint16_t>(info, index, fn, what, napi_uint16_array);
}

ArrayView<float> float32_array_arg(const Napi::CallbackInfo& info, size_t index, const char* fn,
                                   const char* what) {
  return typed_array_arg<float>(info, index, fn, what, napi_float32_array);
}

size_t dim_arg(const Napi::CallbackInfo& info, size_t index, const char* fn, const char* name) {
  const Napi::Value v = info[index];
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + name +
                                               " must be a number, got " + describe(v));
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  constexpr double kMaxSafe = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER
  if (!(d >= 0) || d > kMaxSafe || std::floor(d) != d) {
    throw Napi::RangeError::New(info.Env(), std::string(fn) + ": " + name +
                                                " must be a non-negative integer, got " +
                                                v.ToString().Utf8Value());
  }
  return static_cast<size_t>(d);
}

void expect_length(Napi::Env env, const char* fn, const char* array, size_t length, size_t a,
                   const char* a_name, size_t b, const char* b_name) {
  size_t want = 0;
  const bool overflow = __builtin_mul_overflow(a, b, &want);
  if (overflow || length != want) {
    throw Napi::RangeError::New(
        env, std::string(fn) + ": " + array + " has " + std::to_string(length) +
                 " elements, expected " + a_name + "*" + b_name + " = " +
                 (overflow ? std::string("(overflow)") : std::to_string(want)) + " (" + a_name +
                 "=" + std::to_string(a) + ", " + b_name + "=" + std::to_string(b) + ")");
  }
}

Isa isa_arg(Napi::Env env, const Napi::Value& value, const CpuFeatures& cpu,
            const std::string& label) {
  if (value.IsUndefined() || value.IsNull()) return best_isa(cpu);
  if (!value.IsString()) {
    throw Napi::TypeError::New(env, label + " must be a string (one of " + isa_names_list() +
                                        ") or undefined, got " + describe(value));
  }
  const std::string name = value.As<Napi::String>().Utf8Value();
  if (name.empty()) return best_isa(cpu);
  Isa isa;
  if (!parse_isa(name, &isa)) {
    throw Napi::RangeError::New(env, label + " '" + name + "' is not a known ISA (expected one of " +
                                         isa_names_list() + ")");
  }
  if (!isa_supported(isa, cpu)) {
    std::string usable;
    for (Isa isa_i : kIsaPreference)
      if (isa_supported(isa_i, cpu))
        usable += (usable.empty() ? "" : ", ") + std::string(isa_name(isa_i));
    throw Napi::Error::New(env, label + " '" + name + "' cannot run on this CPU: it lacks " +
                                    missing_features(isa, cpu) + " (CPU has: " +
                                    present_features(cpu) + "; usable ISAs: " + usable + ")");
  }
  return isa;
}

}  // namespace troupe
