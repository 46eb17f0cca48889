// bf16 matmul, scalar path (baseline x86-64 / any CPU): plain loops over 8
// independent fp32 lanes, multiply then add (two roundings; no FMA assumed).
// Same algorithm and lane layout as the AVX2 path, portable C++ only.
#include <cstring>

#include "matmul_bf16_impl.h"

namespace troupe {
namespace {

constexpr int kLanes = 8;
struct Lanes {
  float v[kLanes];
};

inline float bf16_to_fp32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

struct ScalarOps {
  using Acc = Lanes;
  using XVec = Lanes;
  using WVec = Lanes;
  static constexpr size_t kChunk = kLanes;
  static constexpr int kMB = 1, kNB = 4;

  static Acc zero() { return Lanes{}; }
  static Lanes load(const uint16_t* p) {
    Lanes r;
    for (int l = 0; l < kLanes; ++l) r.v[l] = bf16_to_fp32(p[l]);
    return r;
  }
  static Lanes load_tail(const uint16_t* p, size_t n) {
    Lanes r{};
    for (size_t l = 0; l < n; ++l) r.v[l] = bf16_to_fp32(p[l]);
    return r;
  }
  static XVec load_x(const uint16_t* p) { return load(p); }
  static WVec load_w(const uint16_t* p) { return load(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static WVec load_w_tail(const uint16_t* p, size_t n) { return load_tail(p, n); }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) {
    for (int l = 0; l < kLanes; ++l) {
      const float p = x.v[l] * w.v[l];
      acc.v[l] = acc.v[l] + p;
    }
    return acc;
  }
  static float reduce(const Acc& a) {  // same tree as the SIMD paths: halves, then pairs
    float s4[4], s2[2];
    for (int l = 0; l < 4; ++l) s4[l] = a.v[l] + a.v[l + 4];
    for (int l = 0; l < 2; ++l) s2[l] = s4[l] + s4[l + 2];
    return s2[0] + s2[1];
  }
};

}  // namespace

void matmul_bf16_scalar(const uint16_t* w, const uint16_t* xb, float* out, size_t M, size_t N,
                        size_t K) {
  matmul_bf16_run<ScalarOps>(w, xb, out, M, N, K);
}

}  // namespace troupe
