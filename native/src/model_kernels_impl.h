// The forward pass's elementwise, normalization and attention kernels,
// written once in portable C++ and instantiated by each ISA translation unit
// (src/kernels/model_<isa>.cc), whose -m flags let the compiler vectorize
// them. Include after gemm_impl.h, inside no namespace.
//
// Bitwise the same on every ISA: the build uses -ffp-contract=off and no
// -ffast-math, so the compiler may only vectorize loops whose elements are
// independent; every reduction here is written with explicit lanes (kLanes
// partial sums, combined in a fixed halving tree) or as a sequential loop, so
// the order of every rounding is what the source says.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kv_layout.h"
#include "model_kernels.h"

namespace troupe {
namespace {

constexpr size_t kLanes = 16;

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }
// Round to nearest even (same as bf16.cc); NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x0040u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

// e^x, Cephes-style: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6
// polynomial, times 2^n built in the exponent bits. Max relative error about
// 2 ulp. x < -87.3 gives 0 (no denormals), x > 88.3 is clamped. Branch free so
// loops over it vectorize.
inline float exp_poly(float x) {
  const bool underflow = x < -87.3f;
  float c = x > 88.3f ? 88.3f : x;
  c = c < -87.3f ? -87.3f : c;
  const float t = c * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 trick)
  float r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = (p * (r * r) + r) + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;
  const float scale = bits_to_f32(static_cast<uint32_t>(e) << 23);
  const float v = y * scale;
  return underflow ? 0.0f : v;
}

// Halving tree over kLanes partial sums: (l, l + 8), then (l, l + 4), ...
inline float reduce_lanes(float* lanes) {
  for (size_t width = kLanes / 2; width >= 1; width /= 2)
    for (size_t l = 0; l < width; ++l) lanes[l] = lanes[l] + lanes[l + width];
  return lanes[0];
}

template <class Ops>
void gemm_entry(const typename Ops::Elem* w, const typename Ops::Elem* x, float* out, size_t M,
                size_t n0, size_t n1, size_t ldo, size_t K, size_t segments) {
  gemm_run<Ops>(w, x, out, M, n0, n1, ldo, K, segments);
}

void rms_norm_impl(const float* x, const float* weight, float* out, size_t r0, size_t r1,
                   size_t H, float eps) {
  for (size_t r = r0; r < r1; ++r) {
    const float* xr = x + r * H;
    float lanes[kLanes] = {};
    size_t k = 0;
    for (; k + kLanes <= H; k += kLanes)
      for (size_t l = 0; l < kLanes; ++l) lanes[l] = lanes[l] + xr[k + l] * xr[k + l];
    for (size_t l = 0; k + l < H; ++l) lanes[l] = lanes[l] + xr[k + l] * xr[k + l];
    const float mean = reduce_lanes(lanes) / static_cast<float>(H);
    const float inv = 1.0f / std::sqrt(mean + eps);
    float* o = out + r * H;
    for (size_t i = 0; i < H; ++i) o[i] = (xr[i] * inv) * weight[i];
  }
}

void rope_impl(float* x, size_t ld, size_t heads, size_t D, const float* cos_sin, size_t r0,
               size_t r1) {
  const size_t half = D / 2;
  for (size_t r = r0; r < r1; ++r) {
    const float* cs = cos_sin + r * D;
    for (size_t h = 0; h < heads; ++h) {
      float* v = x + r * ld + h * D;
      for (size_t i = 0; i < half; ++i) {
        const float x1 = v[i], x2 = v[i + half], c = cs[i], s = cs[half + i];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

void silu_mul_impl(const float* gate_up, float* out, size_t r0, size_t r1, size_t I) {
  for (size_t r = r0; r < r1; ++r) {
    const float* g = gate_up + r * 2 * I;
    const float* u = g + I;
    float* o = out + r * I;
    for (size_t i = 0; i < I; ++i) {
      const float sig = 1.0f / (1.0f + exp_poly(-g[i]));
      o[i] = (g[i] * sig) * u[i];
    }
  }
}

template <typename T>
inline T to_cache(float v) {
  if constexpr (sizeof(T) == 2) return f32_to_bf16(v);
  else return v;
}
template <typename T>
inline float from_cache(T v) {
  if constexpr (sizeof(T) == 2) return bf16_to_f32(v);
  else return v;
}

template <typename T>
void kv_write_typed(const float* k, const float* v, size_t ld, const int32_t* slots, size_t r0,
                    size_t r1, T* kv, const KvLayout& L) {
  const size_t D = L.head_dim, bs = L.block_size;
  for (size_t r = r0; r < r1; ++r) {
    if (slots[r] < 0) continue;
    const size_t page = static_cast<size_t>(slots[r]) / bs, j = static_cast<size_t>(slots[r]) % bs;
    for (size_t g = 0; g < L.num_kv_heads; ++g) {
      const float* kr = k + r * ld + g * D;
      const float* vr = v + r * ld + g * D;
      T* kp = kv + L.k_offset(page, g);
      T* vp = kv + L.v_offset(page, g) + j * D;
      for (size_t d = 0; d < D; ++d) kp[d * bs + j] = to_cache<T>(kr[d]);
      for (size_t d = 0; d < D; ++d) vp[d] = to_cache<T>(vr[d]);
    }
  }
}

void kv_write_impl(const float* k, const float* v, size_t ld, const int32_t* slots, size_t r0,
                   size_t r1, void* kv, const KvLayout& L) {
  if (L.bf16) kv_write_typed(k, v, ld, slots, r0, r1, static_cast<uint16_t*>(kv), L);
  else kv_write_typed(k, v, ld, slots, r0, r1, static_cast<float*>(kv), L);
}

// Queries processed together over each page, so the page is read once for
// the tile; each query's arithmetic is exactly the single-query algorithm.
constexpr size_t kQueryTile = 16;
constexpr size_t kMaxHeadDim = 256;
constexpr size_t kKeyGroup = 16;  // keys scored together (one 512-bit vector of fp32)
alignas(64) constexpr float kZeroQuery[kMaxHeadDim] = {};  // q of an absent tile slot

// One query against keys [0, n) of one page: the update of kv_layout.h.
// kD is the head dim when known at compile time (0: runtime D). When
// block_size is a multiple of kKeyGroup, scores are computed for whole groups
// of 16 keys (the lanes past n read stale slots and are ignored); each score
// is still sum_d q[d] * k[d][j] in d order, so the bits do not depend on it.
template <typename T, size_t kD>
inline void attend_page(const float* q, const T* kp, const T* vp, size_t n, size_t D, size_t bs,
                        float scale, float* s, float& m, float& l, float* acc) {
  if (kD != 0) D = kD;
  if (bs % kKeyGroup == 0) {
    for (size_t j0 = 0; j0 < n; j0 += kKeyGroup) {
      float sv[kKeyGroup] = {};
      for (size_t d = 0; d < D; ++d) {
        const float qd = q[d];
        const T* kd = kp + d * bs + j0;
        for (size_t jj = 0; jj < kKeyGroup; ++jj) sv[jj] = sv[jj] + qd * from_cache<T>(kd[jj]);
      }
      for (size_t jj = 0; jj < kKeyGroup; ++jj) s[j0 + jj] = sv[jj];
    }
  } else {
    for (size_t j = 0; j < n; ++j) s[j] = 0.0f;
    for (size_t d = 0; d < D; ++d) {
      const float qd = q[d];
      const T* kd = kp + d * bs;
      for (size_t j = 0; j < n; ++j) s[j] = s[j] + qd * from_cache<T>(kd[j]);
    }
  }
  float bm = -INFINITY;
  for (size_t j = 0; j < n; ++j) {
    s[j] = s[j] * scale;
    bm = s[j] > bm ? s[j] : bm;
  }
  const float m_new = m > bm ? m : bm;
  const float alpha = m == -INFINITY ? 0.0f : exp_poly(m - m_new);
  for (size_t j = 0; j < n; ++j) s[j] = exp_poly(s[j] - m_new);
  float li = l * alpha;
  for (size_t j = 0; j < n; ++j) li = li + s[j];
  l = li;
  m = m_new;
  if (kD != 0) {
    float av[kD == 0 ? 1 : kD];
    for (size_t d = 0; d < kD; ++d) av[d] = acc[d] * alpha;
    for (size_t j = 0; j < n; ++j) {
      const float pj = s[j];
      const T* vj = vp + j * kD;
      for (size_t d = 0; d < kD; ++d) av[d] = av[d] + pj * from_cache<T>(vj[d]);
    }
    for (size_t d = 0; d < kD; ++d) acc[d] = av[d];
  } else {
    for (size_t d = 0; d < D; ++d) acc[d] = acc[d] * alpha;
    for (size_t j = 0; j < n; ++j) {
      const float pj = s[j];
      const T* vj = vp + j * D;
      for (size_t d = 0; d < D; ++d) acc[d] = acc[d] + pj * from_cache<T>(vj[d]);
    }
  }
}

// A whole tile of kQueryTile queries against one page, in lockstep, for
// block_size a multiple of kKeyGroup and a compile-time head dim. Per query
// it performs exactly attend_page's operations in the same order (scores sum
// d in order; l and acc add keys in j order), so the bits are the same; the
// lockstep only lets independent queries fill the vector units. Keys past a
// query's own n are masked: their score becomes -inf, their weight exp(-inf)
// = 0, which l adds as an exact +0 and acc never sees. Absent queries (past
// the tile's end, or before this page) have n = 0 and a zero q.
// Vectors wider than the TU's ISA are passed by memory; these functions are
// inline and TU-private, so the psABI note does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
// 16 fp32 lanes as a GCC vector: element-wise operations only (the compiler
// lowers it to one zmm, two ymm or four xmm by ISA, with the same rounding).
typedef float F16x __attribute__((vector_size(64)));
typedef uint16_t U16x16 __attribute__((vector_size(32)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));

template <typename T>
inline F16x load16(const T* p) {
  if constexpr (sizeof(T) == 2) {
    U16x16 h;
    std::memcpy(&h, p, sizeof h);
    const U32x16 w = __builtin_convertvector(h, U32x16) << 16;
    F16x f;
    std::memcpy(&f, &w, sizeof f);
    return f;
  } else {
    F16x f;
    std::memcpy(&f, p, sizeof f);
    return f;
  }
}

template <typename T, size_t kD>
inline void attend_tile_page(const float* const* qp, const size_t* n, const T* kp, const T* vp,
                             size_t bs, float scale, float (*S)[kMaxBlockSize + kKeyGroup],
                             float* m, float* l, float (*acc)[kMaxHeadDim]) {
  constexpr size_t Q = kQueryTile;
  static_assert(kKeyGroup == 16 && kD % 16 == 0, "16-lane vectors");
  for (size_t j0 = 0; j0 < bs; j0 += kKeyGroup) {
    F16x sv[Q];
    for (size_t i = 0; i < Q; ++i) sv[i] = F16x{};
    for (size_t d = 0; d < kD; ++d) {
      const F16x kf = load16(kp + d * bs + j0);
#pragma GCC unroll 16
      for (size_t i = 0; i < Q; ++i) sv[i] = sv[i] + qp[i][d] * kf;
    }
    for (size_t i = 0; i < Q; ++i) {
      const F16x v = sv[i] * scale;
      for (size_t jj = 0; jj < kKeyGroup; ++jj) S[i][j0 + jj] = j0 + jj < n[i] ? v[jj] : -INFINITY;
    }
  }
  float m_new[Q], alpha[Q];
  for (size_t i = 0; i < Q; ++i) {
    float bm = -INFINITY;
    for (size_t j = 0; j < bs; ++j) bm = S[i][j] > bm ? S[i][j] : bm;  // max is exact: order free
    m_new[i] = m[i] > bm ? m[i] : bm;
    alpha[i] = m[i] == -INFINITY ? 0.0f : exp_poly(m[i] - m_new[i]);
  }
  for (size_t i = 0; i < Q; ++i)
    for (size_t j = 0; j < bs; ++j) S[i][j] = n[i] == 0 ? 0.0f : exp_poly(S[i][j] - m_new[i]);
  for (size_t i = 0; i < Q; ++i) l[i] = l[i] * alpha[i];
  for (size_t j = 0; j < bs; ++j)
    for (size_t i = 0; i < Q; ++i) l[i] = l[i] + S[i][j];
  constexpr size_t kV = kD / 16;
  // The page's V widened to fp32 once for the whole tile (exact for bf16).
  alignas(64) float vf[kMaxBlockSize * kD];
  if constexpr (sizeof(T) == 2) {
    size_t rows = 0;
    for (size_t i = 0; i < Q; ++i) rows = n[i] > rows ? n[i] : rows;
    for (size_t e = 0; e < rows * kD; e += 16) {
      const F16x v = load16(vp + e);
      std::memcpy(vf + e, &v, sizeof v);
    }
  }
  const float* vsrc = sizeof(T) == 2 ? vf : reinterpret_cast<const float*>(vp);
  for (size_t i = 0; i < Q; ++i) {
    if (n[i] == 0) continue;
    m[i] = m_new[i];
    F16x av[kV];
    for (size_t c = 0; c < kV; ++c) {
      std::memcpy(&av[c], &acc[i][c * 16], sizeof(F16x));
      av[c] = av[c] * alpha[i];
    }
    for (size_t j = 0; j < n[i]; ++j) {
      const float pj = S[i][j];
      for (size_t c = 0; c < kV; ++c) av[c] = av[c] + pj * load16(vsrc + j * kD + c * 16);
    }
    for (size_t c = 0; c < kV; ++c) std::memcpy(&acc[i][c * 16], &av[c], sizeof(F16x));
  }
}

template <typename T, size_t kD>
void attention_typed(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  const KvLayout& L = a.layout;
  const size_t D = L.head_dim, bs = L.block_size;
  const size_t group = a.num_heads / L.num_kv_heads;
  const T* kv = static_cast<const T*>(a.kv);
  float m[kQueryTile], l[kQueryTile];
  alignas(64) float acc[kQueryTile][kMaxHeadDim];
  alignas(64) float s[kMaxBlockSize + kKeyGroup];
  alignas(64) float scores[kQueryTile][kMaxBlockSize + kKeyGroup];
  const float* qp[kQueryTile];
  for (size_t t = t0; t < t1; ++t) {
    const AttentionTask& task = tasks[t];
    const size_t qlen = static_cast<size_t>(a.query_start[task.seq + 1] - a.query_start[task.seq]);
    const size_t ctx = static_cast<size_t>(a.context_lens[task.seq]);
    const size_t first_pos = ctx - qlen;  // position of query 0 of this sequence
    const size_t first_row = static_cast<size_t>(a.query_start[task.seq]);
    const int32_t* table = a.block_tables + task.seq * a.max_blocks;
    const size_t g = task.head / group;
    for (size_t q0 = task.q_begin; q0 < task.q_end; q0 += kQueryTile) {
      const size_t nq = task.q_end - q0 < kQueryTile ? task.q_end - q0 : kQueryTile;
      for (size_t i = 0; i < kQueryTile; ++i) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
        if (i >= nq) continue;
        qp[i] = a.q + (first_row + q0 + i) * a.ld_q + task.head * D;
        for (size_t d = 0; d < D; ++d) acc[i][d] = 0.0f;
      }
      const size_t last_pos = first_pos + q0 + nq - 1;
      for (size_t b = 0; b <= last_pos / bs; ++b) {
        const size_t page = static_cast<size_t>(table[b]);
        const T* kp = kv + L.k_offset(page, g);
        const T* vp = kv + L.v_offset(page, g);
        if (kD != 0 && bs % kKeyGroup == 0 && nq > 1) {
          size_t n[kQueryTile];
          const float* qt[kQueryTile];
          for (size_t i = 0; i < kQueryTile; ++i) {
            const size_t pos = first_pos + q0 + i;
            n[i] = i >= nq || b * bs > pos ? 0 : (pos - b * bs + 1 < bs ? pos - b * bs + 1 : bs);
            qt[i] = n[i] == 0 ? kZeroQuery : qp[i];
          }
          attend_tile_page<T, kD == 0 ? 64 : kD>(qt, n, kp, vp, bs, a.scale, scores, m, l, acc);
          continue;
        }
        for (size_t i = 0; i < nq; ++i) {
          const size_t pos = first_pos + q0 + i;
          if (b * bs > pos) continue;  // this page starts after the query: masked whole
          const size_t n = pos - b * bs + 1 < bs ? pos - b * bs + 1 : bs;
          attend_page<T, kD>(qp[i], kp, vp, n, D, bs, a.scale, s, m[i], l[i], acc[i]);
        }
      }
      for (size_t i = 0; i < nq; ++i) {
        float* o = a.out + (first_row + q0 + i) * a.ld_out + task.head * D;
        for (size_t d = 0; d < D; ++d) o[d] = acc[i][d] / l[i];
      }
    }
  }
}

template <typename T>
void attention_dispatch(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  switch (a.layout.head_dim) {
    case 64: return attention_typed<T, 64>(a, tasks, t0, t1);
    case 128: return attention_typed<T, 128>(a, tasks, t0, t1);
    default: return attention_typed<T, 0>(a, tasks, t0, t1);
  }
}

void attention_impl(const AttentionArgs& a, const AttentionTask* tasks, size_t t0, size_t t1) {
  if (a.layout.bf16) attention_dispatch<uint16_t>(a, tasks, t0, t1);
  else attention_dispatch<float>(a, tasks, t0, t1);
}

void exp_impl(const float* x, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = exp_poly(x[i]);
}

void tile_lse_impl(const float* logits, size_t n, float* tile_max, double* tile_sum) {
  float mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) mx = logits[i] > mx ? logits[i] : mx;
  double sum = 0.0;
  constexpr size_t kBatch = 256;
  float e[kBatch];
  for (size_t i0 = 0; i0 < n; i0 += kBatch) {
    const size_t nb = n - i0 < kBatch ? n - i0 : kBatch;
    for (size_t i = 0; i < nb; ++i) e[i] = exp_poly(logits[i0 + i] - mx);
    for (size_t i = 0; i < nb; ++i) sum += static_cast<double>(e[i]);
  }
  *tile_max = mx;
  *tile_sum = sum;
}

template <class Bf16Ops, class F32Ops>
constexpr ModelKernels make_model_kernels() {
  return ModelKernels{
      &gemm_entry<Bf16Ops>, &gemm_entry<F32Ops>, &rms_norm_impl, &rope_impl,
      &silu_mul_impl,       &kv_write_impl,      &attention_impl, &exp_impl,
      &tile_lse_impl,
  };
}

}  // namespace
}  // namespace troupe
