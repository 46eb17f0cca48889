// A Llama model resident in native memory and its forward step: one call runs
// every layer for a flat batch of tokens, then the lm head and sampling.
//
// Flat batch (T tokens of S sequences, sequence s owning rows
// [query_start[s], query_start[s+1]) of every activation):
//   tokens, positions, slot_mapping   [T]
//   query_lens, context_lens          [S]   context = cached prefix + this step's queries
//   block_tables                      [S, max_blocks]   (kv_layout.h)
// A sequence is a prefill chunk (query_len > 1, or 1 with a prefix) or a
// decode; the step does not care which: only counts of tokens matter.
//
// Per layer (x: residual stream [T, H], fp32):
//   xn = rms_norm(x) ; qkv = xn W_qkv^T ; rope(q, k) ; cache <- k, v by slot
//   a = paged_attention(q, cache) ; x += a W_o^T      (K in 8 segments)
//   xn = rms_norm(x) ; gu = xn W_gate_up^T ; m = silu(g) * u
//   x += m W_down^T                                   (K in 8 segments)
// In bfloat16 mode every GEMM input is rounded to bf16 (weights are bf16);
// in float32 mode everything is fp32.
//
// Logits are computed only for the rows that need them (sampled rows, rows
// with a prompt-logprob target), in chunks of rows times vocab tiles, with a
// streaming log-sum-exp: never a [T, V] matrix.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/fp8/fp8_kernels.h"
#include "model/kv_layout.h"
#include "model/linear.h"
#include "kernels/model_kernels.h"
#include "model/model_parallel.h"
#include "sampling/sampling.h"
#include "platform/thread_pool.h"

namespace troupe {

struct ModelShape {
  size_t hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0,
         vocab = 0;
  float rms_eps = 1e-5f;
  bool bf16 = true;  // bfloat16 mode (bf16 weights and KV); else float32 mode
  size_t q_cols() const { return heads * head_dim; }
  size_t kv_cols() const { return kv_heads * head_dim; }
  size_t qkv_cols() const { return q_cols() + 2 * kv_cols(); }
};

// Pointers into weight memory the JS side owns and keeps alive. Matrices are
// [N, K] row-major (HF Linear layout), bf16 bits or fp32 by mode, or FP8
// e4m3 with scales in bfloat16 mode (linear.h); norms fp32.
struct LayerWeights {
  const float* input_norm;  // [H]
  Linear qkv;               // [(Hq + 2 Hkv) D, H]: q rows, then k rows, then v rows
  Linear o;                 // [H, Hq D]
  const float* post_norm;   // [H]
  Linear gate_up;           // [2 I, H]: gate rows, then up rows
  Linear down;              // [H, I]
};

struct ModelWeights {
  const void* embed;     // [V, H], bf16 bits or fp32 by mode
  Linear lm_head;        // [V, H] (the embedding when tied)
  const float* final_norm;  // [H]
  std::vector<LayerWeights> layers;
  std::vector<float> inv_freq;  // [D / 2], RoPE inverse frequencies (llama3-scaled)
  std::vector<float> k_scales, v_scales;  // [layers] FP8 KV cache scales (kv_layout.h); empty: 1.0
  const Fp8Kernels* fp8 = nullptr;  // the FP8 GEMM the FP8 linears were laid out for (null: the ISA's)
};

struct StepInput {
  std::vector<int32_t> tokens, positions, slot_mapping;  // [T]
  std::vector<int32_t> query_lens, context_lens;         // [S]
  std::vector<int32_t> block_tables;                     // [S, max_blocks]
  size_t max_blocks = 0;
  std::vector<int32_t> sample_rows;        // [R] flat rows to sample a next token from
  SamplingBatch sampling;                  // [R] params, one per sampled row
  std::vector<int32_t> prompt_targets;     // [T] or empty: token whose logprob row t wants, or -1
  size_t prompt_top_n = 0;                 // top-n logprobs for rows with a target
  bool return_logits = false;              // also return the sampled rows' raw logits [R, V]
  std::vector<float> hidden;               // [T, H] residual stream from the previous stage (not first stage)
};

struct StepOutput {
  std::vector<int32_t> sampled;        // [R]
  std::vector<float> sampled_logprob;  // [R]
  size_t top_n = 0;                    // max num_logprobs over the sampled rows
  std::vector<int32_t> top_ids;        // [R, top_n] (-1 past a row's own n)
  std::vector<float> top_logprobs;     // [R, top_n]
  std::vector<float> prompt_logprob;   // [T] (NaN where no target), empty when none asked
  std::vector<int32_t> prompt_top_ids;     // [T, prompt_top_n]
  std::vector<float> prompt_top_logprobs;  // [T, prompt_top_n]
  std::vector<float> logits;               // [R, V] when return_logits
  std::vector<float> hidden;               // [T, H] residual stream for the next stage (not last stage)
};

struct ModelCounters {
  std::atomic<uint64_t> steps{0};
  std::atomic<uint64_t> gemm_calls{0};
  std::atomic<uint64_t> weight_bytes_read{0};  // bytes of weight matrices each GEMM call streams
  std::atomic<uint64_t> tokens{0};
  std::atomic<uint64_t> peak_scratch_bytes{0};  // high-water mark of the scratch arena
  std::atomic<uint64_t> scratch_growths{0};     // steps that outgrew the arena sized at load
  std::atomic<uint64_t> all_reduces{0};         // tensor-group all-reduces (model_parallel.h)
  std::atomic<uint64_t> all_reduce_bytes{0};
  std::atomic<uint64_t> top_p_rows{0};          // sampled rows with top-p alone (sampling.h records_nucleus)
  std::atomic<uint64_t> top_p_from_records{0};  // of them, rows whose nucleus came from the lm head's records
};

// Scratch memory of the forward step: one anonymous mapping, reserved at load
// for the largest step the model expects (max batched tokens, max sequences;
// pages are faulted in on first use, so the reservation costs address space,
// not memory), carved into 64-byte aligned regions at the start of each step.
// A step larger than the reservation grows it once (counted in
// ModelCounters::scratch_growths) before any region is handed out.
class ScratchArena {
 public:
  ScratchArena() = default;
  ~ScratchArena();
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  // Makes the capacity at least `bytes`; true when it had to grow. Invalidates regions.
  bool reserve(size_t bytes);
  // Starts a step: every region handed out before is dead.
  void reset() { used_ = 0; }
  template <typename T>
  T* take(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    if (used_ + bytes > capacity_) throw std::logic_error("scratch arena: step needs were under-estimated");
    T* p = reinterpret_cast<T*>(base_ + used_);
    used_ += bytes;
    if (used_ > high_) high_ = used_;
    return p;
  }
  static size_t bytes_for(size_t n, size_t elem) { return (n * elem + 63) / 64 * 64; }
  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_; }

 private:
  uint8_t* base_ = nullptr;
  size_t capacity_ = 0, used_ = 0, high_ = 0;
};

// What a step needs from the arena: the sizes that vary per step.
struct StepSizes {
  size_t tokens = 0;        // T
  size_t logit_rows = 0;    // rows needing logits, at most kLogitRowChunk per pass
  size_t sampled_rows = 0;  // distinct rows whose full logits are kept
  size_t sample_entries = 0;  // sampled (row, params) entries
  size_t nucleus_entries = 0;  // of them, top-p entries whose tiles record candidates (sampling.h)
  size_t prompt_top_n = 0;
};

class Model {
 public:
  // max_batch_tokens / max_seqs size the scratch arena at load (larger steps grow it).
  // shard: what this rank holds (model_parallel.h); the default is the whole model.
  Model(const ModelShape& shape, ModelWeights weights, const KvLayout& kv, Isa isa,
        size_t threads, size_t max_batch_tokens = 2048, size_t max_seqs = 256, RankShard shard = {});
  ~Model();

  // Checks a step's input against the shape and the cache; returns "" or the problem.
  std::string validate(const StepInput& in) const;
  // Runs one step (serialized: one at a time per model). Input must be valid.
  StepOutput step(const StepInput& in);

  const ModelShape& shape() const { return shape_; }
  const KvLayout& kv_layout() const { return kv_; }
  size_t kv_cache_bytes() const { return kv_.layer_bytes() * shape_.layers; }
  // Layer l's KV pages (benchmarks fill them instead of running a long prefill).
  void* kv_pages(size_t l) const { return kv_pages_[l]; }
  // Layer l's cache layout: the model's, with that layer's FP8 scales.
  KvLayout layer_kv(size_t l) const {
    KvLayout L = kv_;
    if (!w_.k_scales.empty()) L.k_scale = w_.k_scales[l], L.v_scale = w_.v_scales[l];
    return L;
  }
  size_t threads() const { return pool_.threads(); }
  const ModelCounters& counters() const { return counters_; }
  size_t scratch_capacity() const { return arena_.capacity(); }
  const ThreadPool& pool() const { return pool_; }
  const RankShard& shard() const { return shard_; }
  const ModelWeights& weights() const { return w_; }
  // The FP8 GEMM this model's FP8 linears use (null when it has none).
  const Fp8Kernels* fp8_kernels() const { return f8_; }

 private:
  struct Buffers;  // this step's regions of the arena (model.cc)
  size_t scratch_bytes(const StepSizes& z) const;
  size_t parallel_scratch_bytes(const StepSizes& z) const;
  // The input of `lin` for x [M, K]: x itself (float32 mode), x rounded to bf16
  // into xb, or (FP8 linears) x quantized per token into xb with row scales in xs.
  LinearInput linear_input(const Linear& lin, const float* x, uint16_t* xb, float* xs, size_t M, size_t K);
  template <typename After>
  void gemm(const Linear& lin, LinearInput input, float* out, size_t M, size_t N, size_t K,
            size_t segments, After after);
  // x += input W^T of a row-parallel linear (o_proj, down_proj; K summed in kRowSegments
  // segments): one GEMM whose tiles add the residual (tp 1), or this rank's segments folded
  // with its peers' (row_parallel). The forward code calls this whatever the layout.
  void add_row_linear(const Linear& lin, LinearInput input, size_t T, size_t K, float* x, const Buffers& b);
  void layer(size_t l, float* x, size_t T, const StepInput& in, const Buffers& b,
             const std::vector<int32_t>& qstart, const std::vector<AttentionTask>& tasks);
  void logits_and_sampling(const float* x, size_t T, const StepInput& in, const Buffers& b,
                           StepOutput& out);
  // fn(r0, r1) over [0, rows) in pieces of `grain` rows, on the pool (model.cc and model_parallel.cc).
  template <typename F>
  void parallel_rows(size_t rows, size_t grain, F fn) {
    if (grain == 0) grain = 1;
    const size_t tasks = (rows + grain - 1) / grain;
    if (tasks <= 1) {
      if (rows > 0) fn(size_t{0}, rows);
      return;
    }
    pool_.parallel_for(tasks, [&](size_t t) { fn(t * grain, std::min(rows, (t + 1) * grain)); });
  }
  // Tensor-parallel pieces (model_parallel.cc).
  size_t tp_chunk_rows(size_t T) const;  // rows per row-parallel all-reduce
  size_t tp_logit_rows() const;          // rows per gathered-logits all-reduce
  void all_reduce(float* data, size_t n, size_t segments);
  // linear_input for a row-parallel linear: under tp, FP8 dynamic scales from the whole row.
  LinearInput row_linear_input(const Linear& lin, const float* x, uint16_t* xb, float* xs, size_t M, size_t K,
                               float* gather);
  void row_parallel(const Linear& lin, LinearInput input, size_t T, size_t K, float* x, uint8_t* seg_in,
                    float* partials);
  void embed_tokens(const StepInput& in, float* x);
  void gather_logits(LinearInput input, size_t rows, float* out);

  ModelShape shape_;
  ModelWeights w_;
  KvLayout kv_;
  const ModelKernels* k_;
  const Fp8Kernels* f8_ = nullptr;
  bool fp8_down_ = false;  // some layer's down projection is FP8: its input stays fp32 until quantized
  ThreadPool pool_;
  std::vector<void*> kv_pages_;  // [layers], anonymous memory
  std::mutex step_mu_;
  ModelCounters counters_;
  ScratchArena arena_;
  RankShard shard_;
};

// Anonymous, page-aligned, zeroed memory (mmap); huge pages advised for large sizes.
void* alloc_anonymous(size_t bytes);
void free_anonymous(void* p, size_t bytes);

}  // namespace troupe
