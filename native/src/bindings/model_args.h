// Reading the model bindings' object arguments: each property access checks
// its type and names the function and the property in the TypeError.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sampling/sampling.h"

namespace troupe {

struct PropReader {
  Napi::Env env;
  Napi::Object obj;
  std::string where;  // "modelStep: input", for messages

  bool has(const char* name) const;
  double number(const char* name) const;
  double number_or(const char* name, double fallback) const;
  bool boolean(const char* name) const;
  std::string string(const char* name) const;
  Napi::Object object(const char* name) const;
  Napi::TypedArray typed(const char* name, napi_typedarray_type type, const char* type_name) const;
  std::vector<int32_t> int32s(const char* name) const;
  std::vector<float> float32s(const char* name) const;
  std::vector<double> float64s(const char* name) const;
  // Raw data pointer and element count of a typed array property of `type`.
  template <typename T>
  T* data(const char* name, napi_typedarray_type type, const char* type_name, size_t* length) const {
    Napi::TypedArray a = typed(name, type, type_name);
    *length = a.ElementLength();
    return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  }
  [[noreturn]] void fail_range(const std::string& message) const;
};

// Sampling params for `rows` rows from the struct-of-arrays object
// (see native/model-raw.ts SamplingArrays) over a vocabulary of `vocab`
// tokens; checks every length.
SamplingBatch read_sampling(const PropReader& r, size_t rows, size_t vocab);

}  // namespace troupe
