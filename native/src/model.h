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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kv_layout.h"
#include "model_kernels.h"
#include "sampling.h"
#include "thread_pool.h"

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
// [N, K] row-major (HF Linear layout), bf16 bits or fp32 by mode; norms fp32.
struct LayerWeights {
  const float* input_norm;  // [H]
  const void* qkv;          // [(Hq + 2 Hkv) D, H]: q rows, then k rows, then v rows
  const void* o;            // [H, Hq D]
  const float* post_norm;   // [H]
  const void* gate_up;      // [2 I, H]: gate rows, then up rows
  const void* down;         // [H, I]
};

struct ModelWeights {
  const void* embed;     // [V, H]
  const void* lm_head;   // [V, H] (the embedding when tied)
  const float* final_norm;  // [H]
  std::vector<LayerWeights> layers;
  std::vector<float> inv_freq;  // [D / 2], RoPE inverse frequencies (llama3-scaled)
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
};

struct ModelCounters {
  std::atomic<uint64_t> steps{0};
  std::atomic<uint64_t> gemm_calls{0};
  std::atomic<uint64_t> weight_bytes_read{0};  // bytes of weight matrices each GEMM call streams
  std::atomic<uint64_t> tokens{0};
  std::atomic<uint64_t> peak_scratch_bytes{0};
};

class Model {
 public:
  Model(const ModelShape& shape, ModelWeights weights, const KvLayout& kv, Isa isa,
        size_t threads);
  ~Model();

  // Checks a step's input against the shape and the cache; returns "" or the problem.
  std::string validate(const StepInput& in) const;
  // Runs one step (serialized: one at a time per model). Input must be valid.
  StepOutput step(const StepInput& in);

  const ModelShape& shape() const { return shape_; }
  const KvLayout& kv_layout() const { return kv_; }
  size_t kv_cache_bytes() const { return kv_.layer_bytes() * shape_.layers; }
  size_t threads() const { return pool_.threads(); }
  const ModelCounters& counters() const { return counters_; }

 private:
  void gemm(const void* w, const float* x, float* out, size_t M, size_t N, size_t K,
            size_t segments, std::vector<uint16_t>& xb);
  void layer(size_t l, float* x, size_t T, const StepInput& in, const std::vector<int32_t>& qstart,
             const std::vector<AttentionTask>& tasks, const std::vector<float>& cos_sin);
  void logits_and_sampling(const float* x, size_t T, const StepInput& in, StepOutput& out);
  template <typename F>
  void parallel_rows(size_t rows, size_t grain, F fn);

  ModelShape shape_;
  ModelWeights w_;
  KvLayout kv_;
  const ModelKernels* k_;
  ThreadPool pool_;
  std::vector<void*> kv_pages_;  // [layers], anonymous memory
  std::mutex step_mu_;
  ModelCounters counters_;
  // Scratch, grown to the largest step seen (bytes counted in peak_scratch_bytes).
  std::vector<float> h_, xn_, qkv_, attn_, gu_, act_, tmp_;
  std::vector<uint16_t> xb_;
};

// Anonymous, page-aligned, zeroed memory (mmap); huge pages advised for large sizes.
void* alloc_anonymous(size_t bytes);
void free_anonymous(void* p, size_t bytes);

}  // namespace troupe
