#include <algorithm>
#include "bindings/fp8_binding.h"

#include <string>
#include <vector>

#include "bindings/args.h"
#include "kernels/fp8/e4m3.h"
#include "kernels/fp8/fp8_kernels.h"
#include "bindings/model_args.h"
#include "model/random_fill.h"

namespace troupe {
namespace {

size_t count_arg(const PropReader& r, const char* name) {
  const double d = r.number(name);
  if (!(d >= 0) || d != static_cast<double>(static_cast<size_t>(d))) r.fail_range(std::string(name) + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

template <typename T>
T* sized(const PropReader& r, const char* name, napi_typedarray_type type, const char* type_name, size_t want) {
  size_t n;
  T* p = r.data<T>(name, type, type_name, &n);
  if (n != want) r.fail_range(std::string(name) + " has " + std::to_string(n) + " elements, expected " + std::to_string(want));
  return p;
}

// fp8Gemm(isa, {w: Uint8Array [N*K], ws: Float32Array [N], xq: Uint16Array [M*K] (bf16 bits of
// e4m3 values), xs: Float32Array [M], out: Float32Array [M*N], M, N, K, segments, n0?, n1?,
// kernel?: 'auto' | 'table'}) -> the kernel's name ('table': the ISA's table-conversion kernel).
Napi::Value Fp8Gemm(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  const Isa isa = isa_arg(env, info[0], cpu, "fp8Gemm: isa");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "fp8Gemm: args must be an object");
  PropReader r{env, info[1].As<Napi::Object>(), "fp8Gemm: args"};
  const bool table = r.has("kernel") && r.string("kernel") == "table";
  const Fp8Kernels* k = table ? fp8_kernels_table(isa) : fp8_kernels(isa, cpu);
  if (k == nullptr) throw Napi::Error::New(env, std::string("fp8Gemm: this build has no '") + isa_name(isa) + "' kernels");
  const size_t M = count_arg(r, "M"), N = count_arg(r, "N"), K = count_arg(r, "K"), segments = count_arg(r, "segments");
  const size_t n0 = r.has("n0") ? count_arg(r, "n0") : 0, n1 = r.has("n1") ? count_arg(r, "n1") : N;
  if (n0 > n1 || n1 > N) r.fail_range("need n0 <= n1 <= N");
  const uint8_t* w = sized<uint8_t>(r, "w", napi_uint8_array, "Uint8Array", N * K);
  const float* ws = sized<float>(r, "ws", napi_float32_array, "Float32Array", N);
  const uint16_t* xq = sized<uint16_t>(r, "xq", napi_uint16_array, "Uint16Array", M * K);
  const float* xs = sized<float>(r, "xs", napi_float32_array, "Float32Array", M);
  float* out = sized<float>(r, "out", napi_float32_array, "Float32Array", M * N);
  // The in-register kernels take no NaN codes (a model refuses them at load): such arrays
  // go to the table kernel, whose bits the fast kernels reproduce for every other code.
  if (k->prepack != nullptr && std::any_of(w, w + N * K, [](uint8_t c) { return (c & 0x7f) == 0x7f; }))
    k = fp8_kernels_table(isa);
  std::vector<uint8_t> packed;  // w stays in K order for the caller; the kernel may read a prepacked copy
  if (k->prepack != nullptr && !(r.has("prepacked") && r.boolean("prepacked"))) {
    packed.assign(w, w + N * K);
    k->prepack(packed.data(), N, K, segments);
    w = packed.data();
  }
  k->gemm(w, xq, xs, ws, out, M, n0, n1, N, K, segments);
  return Napi::String::New(env, k->name);
}

// fp8Prepack(isa, {w: Uint8Array [N*K], N, K, segments}): reorders w in place for the ISA's
// FP8 kernel (benchmarks then pass {prepacked: true} to fp8Gemm); returns the layout or null.
Napi::Value Fp8Prepack(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  const Isa isa = isa_arg(env, info[0], cpu, "fp8Prepack: isa");
  const Fp8Kernels* k = fp8_kernels(isa, cpu);
  if (k == nullptr) throw Napi::Error::New(env, std::string("fp8Prepack: this build has no '") + isa_name(isa) + "' kernels");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "fp8Prepack: args must be an object");
  PropReader r{env, info[1].As<Napi::Object>(), "fp8Prepack: args"};
  const size_t N = count_arg(r, "N"), K = count_arg(r, "K"), segments = count_arg(r, "segments");
  uint8_t* w = sized<uint8_t>(r, "w", napi_uint8_array, "Uint8Array", N * K);
  if (k->prepack == nullptr) return env.Null();
  k->prepack(w, N, K, segments);
  return Napi::String::New(env, k->layout);
}

// fp8QuantizeActivations({x: Float32Array [M*K], xq: Uint16Array [M*K], xs: Float32Array [M],
// M, K, ub?, staticScale?}): the model's per-token activation quantizer.
Napi::Value Fp8QuantizeActivations(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "fp8QuantizeActivations: args must be an object");
  PropReader r{env, info[0].As<Napi::Object>(), "fp8QuantizeActivations: args"};
  const size_t M = count_arg(r, "M"), K = count_arg(r, "K");
  const float* x = sized<float>(r, "x", napi_float32_array, "Float32Array", M * K);
  uint16_t* xq = sized<uint16_t>(r, "xq", napi_uint16_array, "Uint16Array", M * K);
  float* xs = sized<float>(r, "xs", napi_float32_array, "Float32Array", M);
  quantize_rows_e4m3(x, xq, xs, 0, M, K, static_cast<float>(r.number_or("ub", INFINITY)),
                     static_cast<float>(r.number_or("staticScale", 0)));
  return env.Undefined();
}

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

Napi::Value fill_kv(const Napi::CallbackInfo& info, Model& m) {
  Napi::Env env = info.Env();
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

void register_fp8_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("fp8Gemm", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return Fp8Gemm(info, cpu); }, "fp8Gemm"));
  exports.Set("fp8Prepack", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return Fp8Prepack(info, cpu); }, "fp8Prepack"));
  exports.Set("fp8QuantizeActivations", Napi::Function::New(env, Fp8QuantizeActivations, "fp8QuantizeActivations"));
  exports.Set("fp8QuantizeWeights", Napi::Function::New(env, Fp8QuantizeWeights, "fp8QuantizeWeights"));
}

}  // namespace troupe
