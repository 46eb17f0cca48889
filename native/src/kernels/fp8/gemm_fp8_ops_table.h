// FP8 Ops for every ISA, built on that ISA's bf16 Ops (gemm_ops_<isa>.h): a
// chunk of e4m3 codes is widened to bf16 bits through the 256-entry table
// (kernels/fp8/e4m3.h) into a small buffer, then loaded and multiplied exactly as the
// bf16 GEMM does. Portable and exact; the avx512bf16 path with VBMI uses
// gemm_fp8_ops_vbmi.h instead (the same bits, converted in registers).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/fp8/e4m3.h"

namespace troupe {
namespace {

template <class B>
struct Fp8TableOps {
  using Bf16 = B;
  using XElem = uint16_t;
  using WElem = uint8_t;
  static constexpr bool kPrepack = false;
  static void widen_row(const uint8_t* w, size_t K, size_t, uint16_t* out) {
    for (size_t k = 0; k < K; ++k) out[k] = kE4m3Bf16[w[k]];
  }
  using Acc = typename B::Acc;
  using XVec = typename B::XVec;
  using WVec = typename B::WVec;
  static constexpr size_t kChunk = B::kChunk;
  static constexpr int kNB1 = B::kNB1;
  static constexpr int kMBs = B::kMBs, kNBs = B::kNBs;
  static constexpr size_t kSmallM = B::kSmallM;
  static constexpr int kMB = B::kMB, kNB = B::kNB;
  static constexpr bool kReduce16 = B::kReduce16;

  static void prefetch(const uint8_t* p) { B::prefetch(reinterpret_cast<const typename B::Elem*>(p)); }
  static Acc zero() { return B::zero(); }
  static XVec load_x(const uint16_t* p) { return B::load_x(p); }
  static XVec load_x_tail(const uint16_t* p, size_t n) { return B::load_x_tail(p, n); }
  static WVec load_w(const uint8_t* p) {
    alignas(64) uint16_t t[kChunk];
    for (size_t i = 0; i < kChunk; ++i) t[i] = kE4m3Bf16[p[i]];
    return B::load_w(t);
  }
  static WVec load_w_tail(const uint8_t* p, size_t n) {
    alignas(64) uint16_t t[kChunk] = {};
    for (size_t i = 0; i < n; ++i) t[i] = kE4m3Bf16[p[i]];
    return B::load_w_tail(t, n);
  }
  static Acc dot(Acc acc, const XVec& x, const WVec& w) { return B::dot(acc, x, w); }
  static float reduce(const Acc& a) { return B::reduce(a); }
  static void reduce16(const Acc* a, float* out) { B::reduce16(a, out); }
};

}  // namespace
}  // namespace troupe
