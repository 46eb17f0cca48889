// GEMM lane operations for the scalar path (baseline x86-64 / any CPU): plain
// loops over 8 independent fp32 lanes, multiply then add (two roundings; no
// FMA assumed). Same lane layout and reduction tree as the AVX2 path, portable
// C++ only. See gemm_impl.h for the Ops contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace troupe {
namespace {

constexpr int kScalarLanes = 8;
struct Lanes {
  float v[kScalarLanes];
};

inline float scalar_bf16_to_fp32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <typename T>
inline float scalar_widen(T v) {
  if constexpr (sizeof(T) == 2) return scalar_bf16_to_fp32(v);
  else return v;
}

template <typename T>
struct ScalarOpsOf {
  using Elem = T;
  using Acc = Lanes;
  using XVec = Lanes;
  using WVec = Lanes;
  static constexpr size_t kChunk = kScalarLanes;
  static constexpr int kNB1 = 4;
  static constexpr int kMBs = 1, kNBs = 4;
  static constexpr size_t kSmallM = 64;
  static constexpr int kMB = 1, kNB = 4;
  static void prefetch(const T* p) { __builtin_prefetch(p); }

  static Acc zero() { return Lanes{}; }
  static Lanes load(const T* p) {
    Lanes r;
    for (int l = 0; l < kScalarLanes; ++l) r.v[l] = scalar_widen(p[l]);
    return r;
  }
  static Lanes load_tail(const T* p, size_t n) {
    Lanes r{};
    for (size_t l = 0; l < n; ++l) r.v[l] = scalar_widen(p[l]);
    return r;
  }
  static XVec load_x(const T* p) { return load(p); }
  static WVec load_w(const T* p) { return load(p); }
  static XVec load_x_tail(const T* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const T* p, size_t n) { return load_tail(p, n); }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
    for (int l = 0; l < kScalarLanes; ++l) {
      const float p = x.v[l] * w.v[l];
      acc.v[l] = acc.v[l] + p;
    }
    return acc;
  }
  static constexpr bool kReduce16 = false;
  static void reduce16(const Acc*, float*) {}
  static float reduce(const Acc& a) {  // same tree as the SIMD paths: halves, then pairs
    float s4[4], s2[2];
    for (int l = 0; l < 4; ++l) s4[l] = a.v[l] + a.v[l + 4];
    for (int l = 0; l < 2; ++l) s2[l] = s4[l] + s4[l + 2];
    return s2[0] + s2[1];
  }
};

using ScalarOps = ScalarOpsOf<uint16_t>;  // bf16 weights
using ScalarF32Ops = ScalarOpsOf<float>;

}  // namespace
}  // namespace troupe
