#include "bindings/fp8_binding.h"

#include <string>

#include "bindings/args.h"
#include "kernels/fp8/e4m3.h"
#include "kernels/fp8/fp8_kernels.h"

namespace troupe {
namespace {

// fp8QuantizeWeights(src: Uint16Array (bf16 bits) | Float32Array [rows*cols], rows, cols,
// codes: Uint8Array [rows*cols], scales: Float32Array [rows]): per-channel e4m3 (FBGEMM's).
Napi::Value Fp8QuantizeWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "fp8QuantizeWeights";
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, std::string(fn) + ": src must be a Uint16Array (bf16) or Float32Array");
  const Napi::TypedArray src = info[0].As<Napi::TypedArray>();
  const bool bf16 = src.TypedArrayType() == napi_uint16_array;
  if (!bf16 && src.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, std::string(fn) + ": src must be a Uint16Array (bf16) or Float32Array");
  const size_t rows = dim_arg(info, 1, fn, "rows"), cols = dim_arg(info, 2, fn, "cols");
  if (src.ElementLength() != rows * cols) throw Napi::RangeError::New(env, std::string(fn) + ": src must hold rows * cols elements");
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[3].As<Napi::TypedArray>().ElementLength() != rows * cols)
    throw Napi::TypeError::New(env, std::string(fn) + ": codes must be a Uint8Array of rows * cols");
  if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      info[4].As<Napi::TypedArray>().ElementLength() != rows)
    throw Napi::TypeError::New(env, std::string(fn) + ": scales must be a Float32Array of rows");
  auto ptr = [](const Napi::TypedArray& a) { return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(); };
  quantize_weight_rows_e4m3(ptr(src), bf16, ptr(info[3].As<Napi::TypedArray>()),
                            reinterpret_cast<float*>(ptr(info[4].As<Napi::TypedArray>())), 0, rows, cols);
  return env.Undefined();
}

const char* dtype_name(const Linear& l) {
  switch (l.type) {
    case WeightType::Bf16: return "bf16";
    case WeightType::F32: return "f32";
    case WeightType::E4m3: return "fp8_e4m3";
  }
  return "?";
}

}  // namespace

void set_linear_stats(Napi::Env env, Napi::Object o, const Model& m) {
  const ModelShape& s = m.shape();
  const ModelWeights& w = m.weights();
  const size_t H = s.hidden, I = s.intermediate;
  // The lm head this rank holds: its vocab rows, none before the last pipeline stage.
  const bool head = m.shard().lm_head;
  double bytes = head ? static_cast<double>(m.shard().local_vocab() * H * w.lm_head.elem_bytes()) : 0.0;
  Napi::Object dtypes = Napi::Object::New(env);
  Napi::Array qkv = Napi::Array::New(env), o_ = Napi::Array::New(env), gu = Napi::Array::New(env), down = Napi::Array::New(env);
  for (uint32_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& lw = w.layers[l];
    bytes += static_cast<double>(s.qkv_cols() * H * lw.qkv.elem_bytes() + H * s.q_cols() * lw.o.elem_bytes() +
                                 2 * I * H * lw.gate_up.elem_bytes() + H * I * lw.down.elem_bytes());
    qkv.Set(l, dtype_name(lw.qkv));
    o_.Set(l, dtype_name(lw.o));
    gu.Set(l, dtype_name(lw.gate_up));
    down.Set(l, dtype_name(lw.down));
  }
  dtypes.Set("qkv", qkv);
  dtypes.Set("o", o_);
  dtypes.Set("gateUp", gu);
  dtypes.Set("down", down);
  dtypes.Set("lmHead", head ? dtype_name(w.lm_head) : "none");
  o.Set("linearWeightBytes", Napi::Number::New(env, bytes));
  o.Set("linearDtypes", dtypes);
  o.Set("fp8Kernel", m.fp8_kernels() != nullptr ? Napi::Value(Napi::String::New(env, m.fp8_kernels()->name)) : env.Null());
}

void register_fp8_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("fp8QuantizeWeights", Napi::Function::New(env, Fp8QuantizeWeights, "fp8QuantizeWeights"));
}

}  // namespace troupe
