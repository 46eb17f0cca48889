// The FP8 GEMM and the activation quantizer on their own (test/native/fp8-gemm.test.ts):
//   fp8Gemm(isa, {w, ws, xq, xs, out, M, N, K, segments, n0?, n1?, kernel?})   see Fp8Gemm
//   fp8QuantizeActivations({x, xq, xs, M, K, ub?, staticScale?, isa?})      the model's quantizer
#include "probes/fp8_probes.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "bindings/model_args.h"
#include "kernels/fp8/e4m3.h"
#include "model/gemm_parallel.h"
#include "kernels/fp8/fp8_kernels.h"
#include "kernels/model_kernels.h"

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
// kernel?: 'auto' | 'table', packedX?}) -> the kernel's name ('table': the ISA's table-conversion
// kernel; '+packed-x' appended where packedX had x packed whole first, as linear_gemm.h does).
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
  if (k->refuses_nan && std::any_of(w, w + N * K, [](uint8_t c) { return (c & 0x7f) == 0x7f; }))
    k = fp8_kernels_table(isa);
  std::vector<uint8_t> packed;  // w stays in K order for the caller; a kernel with a layout of its own reads a prepacked copy
  if (k->prepack != nullptr) {
    packed.assign(w, w + N * K);
    k->prepack(packed.data(), N, K, segments);
    w = packed.data();
  }
  if (r.has("packedX") && r.boolean("packedX") && k->gemm_packed != nullptr && M >= k->packed_min_rows) {
    std::vector<uint32_t> px;
    k->gemm_packed(w, N, gemm_pack_x_whole(*k, xq, M, K, segments, px), xs, ws, out, M, n0, n1, N, K, segments);
    return Napi::String::New(env, std::string(k->name) + "+packed-x");
  }
  k->gemm(w, N, xq, xs, ws, out, M, n0, n1, N, K, segments);
  return Napi::String::New(env, k->name);
}

// fp8QuantizeActivations({x: Float32Array [M*K], xq: Uint16Array [M*K], xs: Float32Array [M],
// M, K, ub?, staticScale?, isa?}): the model's per-token activation quantizer; with isa, that
// ISA's vectorized one from the model kernel table (the same bits).
Napi::Value Fp8QuantizeActivations(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "fp8QuantizeActivations: args must be an object");
  PropReader r{env, info[0].As<Napi::Object>(), "fp8QuantizeActivations: args"};
  const size_t M = count_arg(r, "M"), K = count_arg(r, "K");
  const float* x = sized<float>(r, "x", napi_float32_array, "Float32Array", M * K);
  uint16_t* xq = sized<uint16_t>(r, "xq", napi_uint16_array, "Uint16Array", M * K);
  float* xs = sized<float>(r, "xs", napi_float32_array, "Float32Array", M);
  const float ub = static_cast<float>(r.number_or("ub", INFINITY));
  const float static_scale = static_cast<float>(r.number_or("staticScale", 0));
  const Napi::Value isa = info[0].As<Napi::Object>().Get("isa");
  if (isa.IsUndefined()) {
    quantize_rows_e4m3(x, xq, xs, 0, M, K, ub, static_scale);
  } else {
    const ModelKernels* k = model_kernels(isa_arg(env, isa, cpu, "fp8QuantizeActivations: isa"));
    if (k == nullptr) throw Napi::Error::New(env, "fp8QuantizeActivations: this build has no kernels for that isa");
    k->quantize_e4m3(x, xq, xs, 0, M, K, ub, static_scale);
  }
  return env.Undefined();
}

}  // namespace

void register_fp8_probes(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("fp8Gemm", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return Fp8Gemm(info, cpu); }, "fp8Gemm"));
  exports.Set("fp8QuantizeActivations", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return Fp8QuantizeActivations(info, cpu); }, "fp8QuantizeActivations"));
}

}  // namespace troupe
