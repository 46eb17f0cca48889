#include "probes/matmul_bf16_probe.h"

#include <cstdint>
#include <memory>

#include "bindings/args.h"
#include "kernels/bf16.h"
#include "platform/isa.h"
#include "kernels/matmul_bf16.h"

namespace troupe {
namespace {

constexpr const char* kFn = "matmulBf16";

bool overlaps(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return a_bytes != 0 && b_bytes != 0 && pa < pb + b_bytes && pb < pa + a_bytes;
}

Napi::Value MatmulBf16(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  const ArrayView<uint16_t> w = uint16_array_arg(info, 0, kFn, "w ([N,K] bf16 bits)");
  const ArrayView<float> x = float32_array_arg(info, 1, kFn, "x ([M,K] fp32)");
  const ArrayView<float> out = float32_array_arg(info, 2, kFn, "out ([M,N] fp32)");
  const size_t M = dim_arg(info, 3, kFn, "M");
  const size_t N = dim_arg(info, 4, kFn, "N");
  const size_t K = dim_arg(info, 5, kFn, "K");
  const Isa isa = isa_arg(env, info[6], cpu, std::string(kFn) + ": isa");

  expect_length(env, kFn, "w", w.length, N, "N", K, "K");
  expect_length(env, kFn, "x", x.length, M, "M", K, "K");
  expect_length(env, kFn, "out", out.length, M, "M", N, "N");
  // x is copied (rounded) before the kernel runs, so out may alias x; never w.
  if (overlaps(out.data, out.length * sizeof(float), w.data, w.length * sizeof(uint16_t))) {
    throw Napi::RangeError::New(env, std::string(kFn) + ": out must not overlap w");
  }

  const MatmulBf16Fn kernel = matmul_bf16_kernel(isa);
  if (kernel == nullptr) {
    throw Napi::Error::New(env, std::string(kFn) + ": this build has no '" + isa_name(isa) +
                                    "' kernel");
  }
  if (M == 0 || N == 0) return env.Undefined();

  std::unique_ptr<uint16_t[]> xb(new uint16_t[M * K]);  // [M, K] bf16 bits (bad_alloc -> JS Error)
  round_fp32_to_bf16(x.data, xb.get(), M * K);
  kernel(w.data, xb.get(), out.data, M, N, K);
  return env.Undefined();
}

}  // namespace

void register_matmul_bf16_probe(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("matmulBf16", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return MatmulBf16(info, cpu); }, "matmulBf16"));
}

}  // namespace troupe
