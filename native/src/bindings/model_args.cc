#include "bindings/model_args.h"

#include "bindings/args.h"

namespace troupe {

bool PropReader::has(const char* name) const {
  const Napi::Value v = obj.Get(name);
  return !v.IsUndefined() && !v.IsNull();
}

double PropReader::number(const char* name) const {
  const Napi::Value v = obj.Get(name);
  if (!v.IsNumber())
    throw Napi::TypeError::New(env, where + "." + name + " must be a number, got " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

double PropReader::number_or(const char* name, double fallback) const {
  return has(name) ? number(name) : fallback;
}

bool PropReader::boolean(const char* name) const {
  const Napi::Value v = obj.Get(name);
  if (!v.IsBoolean())
    throw Napi::TypeError::New(env, where + "." + name + " must be a boolean, got " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

std::string PropReader::string(const char* name) const {
  const Napi::Value v = obj.Get(name);
  if (!v.IsString())
    throw Napi::TypeError::New(env, where + "." + name + " must be a string, got " + describe(v));
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object PropReader::object(const char* name) const {
  const Napi::Value v = obj.Get(name);
  if (!v.IsObject())
    throw Napi::TypeError::New(env, where + "." + name + " must be an object, got " + describe(v));
  return v.As<Napi::Object>();
}

Napi::TypedArray PropReader::typed(const char* name, napi_typedarray_type type,
                                   const char* type_name) const {
  const Napi::Value v = obj.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(env, where + "." + name + " must be a " + type_name + ", got " + describe(v));
  return v.As<Napi::TypedArray>();
}

std::vector<int32_t> PropReader::int32s(const char* name) const {
  size_t n;
  const int32_t* p = data<int32_t>(name, napi_int32_array, "Int32Array", &n);
  return std::vector<int32_t>(p, p + n);
}

std::vector<float> PropReader::float32s(const char* name) const {
  size_t n;
  const float* p = data<float>(name, napi_float32_array, "Float32Array", &n);
  return std::vector<float>(p, p + n);
}

std::vector<double> PropReader::float64s(const char* name) const {
  size_t n;
  const double* p = data<double>(name, napi_float64_array, "Float64Array", &n);
  return std::vector<double>(p, p + n);
}

void PropReader::fail_range(const std::string& message) const {
  throw Napi::RangeError::New(env, where + ": " + message);
}

SamplingBatch read_sampling(const PropReader& r, size_t rows, size_t vocab) {
  SamplingBatch b;
  const auto temperature = r.float32s("temperature");
  const auto top_k = r.int32s("topK");
  const auto top_p = r.float32s("topP");
  const auto min_p = r.float32s("minP");
  const auto presence = r.float32s("presencePenalty");
  const auto frequency = r.float32s("frequencyPenalty");
  const auto repetition = r.float32s("repetitionPenalty");
  const auto seed = r.float64s("seed");
  const auto output_index = r.float64s("outputIndex");
  const auto num_logprobs = r.int32s("numLogprobs");
  const auto prompt_offsets = r.int32s("promptOffsets");
  const auto output_offsets = r.int32s("outputOffsets");
  const auto bias_offsets = r.int32s("biasOffsets");
  b.prompt_tokens = r.int32s("promptTokens");
  b.output_tokens = r.int32s("outputTokens");
  b.bias_ids = r.int32s("biasIds");
  b.bias_values = r.float32s("biasValues");
  auto need = [&](size_t got, size_t want, const char* name) {
    if (got != want)
      r.fail_range(std::string(name) + " has " + std::to_string(got) + " entries, expected " + std::to_string(want));
  };
  need(temperature.size(), rows, "temperature");
  need(top_k.size(), rows, "topK");
  need(top_p.size(), rows, "topP");
  need(min_p.size(), rows, "minP");
  need(presence.size(), rows, "presencePenalty");
  need(frequency.size(), rows, "frequencyPenalty");
  need(repetition.size(), rows, "repetitionPenalty");
  need(seed.size(), rows, "seed");
  need(output_index.size(), rows, "outputIndex");
  need(num_logprobs.size(), rows, "numLogprobs");
  need(prompt_offsets.size(), rows + 1, "promptOffsets");
  need(output_offsets.size(), rows + 1, "outputOffsets");
  need(bias_offsets.size(), rows + 1, "biasOffsets");
  need(b.bias_values.size(), b.bias_ids.size(), "biasValues");
  auto check_offsets = [&](const std::vector<int32_t>& off, size_t total, const char* name) {
    if (off[0] != 0 || static_cast<size_t>(off[rows]) != total)
      r.fail_range(std::string(name) + " must start at 0 and end at the flat array's length");
    for (size_t i = 0; i < rows; ++i)
      if (off[i + 1] < off[i]) r.fail_range(std::string(name) + " must not decrease");
  };
  check_offsets(prompt_offsets, b.prompt_tokens.size(), "promptOffsets");
  check_offsets(output_offsets, b.output_tokens.size(), "outputOffsets");
  check_offsets(bias_offsets, b.bias_ids.size(), "biasOffsets");
  // Grammar masks: row i's is masks[maskIndex[i] * W ..][0, W) (maskIndex -1: none).
  std::vector<int32_t> mask_index;
  const size_t words = (vocab + 31) / 32;
  if (r.has("maskIndex")) {
    mask_index = r.int32s("maskIndex");
    need(mask_index.size(), rows, "maskIndex");
    size_t n = 0;
    const uint32_t* m = r.data<uint32_t>("masks", napi_uint32_array, "Uint32Array", &n);
    if (words == 0 || n % words != 0)
      r.fail_range("masks has " + std::to_string(n) + " words, not a multiple of ceil(V / 32) = " + std::to_string(words));
    b.masks.assign(m, m + n);
    for (int32_t at : mask_index)
      if (at < -1 || (at >= 0 && static_cast<size_t>(at) >= n / words))
        r.fail_range("maskIndex entry " + std::to_string(at) + " is not -1 or one of the " + std::to_string(n / words) + " masks");
  }
  b.params.resize(rows);
  for (size_t i = 0; i < rows; ++i) {
    SamplingParams& p = b.params[i];
    p.temperature = temperature[i];
    p.top_k = top_k[i];
    p.top_p = top_p[i];
    p.min_p = min_p[i];
    p.presence_penalty = presence[i];
    p.frequency_penalty = frequency[i];
    p.repetition_penalty = repetition[i];
    p.seed = static_cast<uint64_t>(seed[i]);
    p.output_index = static_cast<uint64_t>(output_index[i]);
    p.num_logprobs = num_logprobs[i];
    p.prompt_tokens = b.prompt_tokens.data() + prompt_offsets[i];
    p.num_prompt_tokens = static_cast<size_t>(prompt_offsets[i + 1] - prompt_offsets[i]);
    p.output_tokens = b.output_tokens.data() + output_offsets[i];
    p.num_output_tokens = static_cast<size_t>(output_offsets[i + 1] - output_offsets[i]);
    p.bias_ids = b.bias_ids.data() + bias_offsets[i];
    p.bias_values = b.bias_values.data() + bias_offsets[i];
    p.num_bias = static_cast<size_t>(bias_offsets[i + 1] - bias_offsets[i]);
    if (!mask_index.empty() && mask_index[i] >= 0) p.mask = b.masks.data() + static_cast<size_t>(mask_index[i]) * words;
  }
  return b;
}

}  // namespace troupe
