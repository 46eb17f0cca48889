// The paged KV cache: layout of one layer's pages, and how attention reads them.
//
// The cache of a layer is `num_blocks` pages of `block_size` token slots. A
// sequence owns a list of pages, its block table; token position p of the
// sequence lives in page block_table[p / block_size] at offset p % block_size.
// A flat slot number names one token slot of the whole cache:
//
//     slot = page * block_size + offset              (slot_mapping[t] for token t)
//
//   block table of seq 0:  [ 7 | 2 | 9 ]          positions 0..15 -> page 7,
//   block table of seq 1:  [ 4 | 0 ]              16..31 -> page 2, 32..47 -> page 9
//
// One page (elements of the cache dtype: bf16 bits in bfloat16 mode, fp32 in
// float32, or one byte per element with an FP8 KV cache (--kv-cache-dtype fp8 /
// fp8_e4m3 / fp8_e5m2): code = fp8(value / scale), k_scale for K and v_scale
// for V, one pair per layer; attention widens the codes in registers, folds
// k_scale into the score scale and multiplies the output by v_scale):
//
//   page b ──┬─ K ─ kv head 0: [D][block_size]   K transposed: k[d][j] at d * block_size + j
//            │      kv head 1: [D][block_size]
//            │      ...
//            └─ V ─ kv head 0: [block_size][D]   v[j][d] at j * D + d
//                   kv head 1: [block_size][D]
//                   ...
//   page_elems = 2 * Hkv * D * block_size; K of head g at b*page_elems + g*D*block_size,
//   V of head g at b*page_elems + (Hkv + g)*D*block_size.
//
// K is stored transposed so the scores of one query against a whole page are
// vertical vector operations (s[j] += q[d] * k[d][j], j across lanes) with no
// horizontal reductions; V row-major so the output is acc[d] += p[j] * v[j][d].
//
// Attention of a query at position p (p = context_len - query_len + i) reads
// pages 0 .. p / block_size in block-table order, the last one only up to its
// own position (causal), whether it is a one-token decode or part of a prefill
// chunk, and whatever else is in the batch:
//
//   m = -inf, l = 0, acc[D] = 0
//   for each page b, keys j < n_b:       (n_b = block_size, or p % block_size + 1 for the last)
//     s[j]  = (sum_d q[d] * k[d][j]) * scale          d in order, fp32
//     m'    = max(m, max_j s[j]);  a = exp(m - m')    (a = 0 while m = -inf)
//     p[j]  = exp(s[j] - m')
//     l     = l * a + p[0] + p[1] + ...               in j order
//     acc   = acc * a + p[0] v[0] + p[1] v[1] + ...   in j order
//     m     = m'
//   out = acc / l
//
// So the online softmax is split at page boundaries, and a query's result
// depends only on its own row and the cache contents: chunking a prompt, or
// batching it with others, never changes a bit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace troupe {

// FP8 element formats of the KV cache (kernels/fp8/e4m3.h).
enum class KvFp8 : uint8_t { None, E4m3, E5m2 };

struct KvLayout {
  size_t num_blocks;
  size_t block_size;
  size_t num_kv_heads;
  size_t head_dim;
  bool bf16;  // element type: bf16 bits (uint16_t) or fp32, unless fp8 says otherwise
  KvFp8 fp8 = KvFp8::None;  // one byte per element: e4m3 / e5m2 codes of value / scale
  float k_scale = 1.0f, v_scale = 1.0f;  // FP8: this layer's scales (the model sets them per layer)

  size_t page_elems() const { return 2 * num_kv_heads * head_dim * block_size; }
  size_t elem_bytes() const { return fp8 != KvFp8::None ? 1 : bf16 ? 2 : 4; }
  size_t layer_bytes() const { return num_blocks * page_elems() * elem_bytes(); }
  size_t k_offset(size_t page, size_t head) const {
    return page * page_elems() + head * head_dim * block_size;
  }
  size_t v_offset(size_t page, size_t head) const {
    return page * page_elems() + (num_kv_heads + head) * head_dim * block_size;
  }
};

// Largest block_size the attention kernel accepts (its per-page score buffer).
constexpr size_t kMaxBlockSize = 256;

}  // namespace troupe
