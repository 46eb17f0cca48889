#include "model/model.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "kernels/bf16.h"
#include "kernels/fp8/e4m3.h"
#include "model/linear_gemm.h"

namespace troupe {
namespace {

constexpr size_t kLogitRowChunk = 256;  // rows needing logits per pass over the lm head (4 MiB of tile)
constexpr size_t kAttentionRows = 64;  // query rows per attention task

}  // namespace

void* alloc_anonymous(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (bytes >= (size_t{32} << 20)) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

void free_anonymous(void* p, size_t bytes) {
  if (p != nullptr) munmap(p, bytes);
}

ScratchArena::~ScratchArena() { free_anonymous(base_, capacity_); }

bool ScratchArena::reserve(size_t bytes) {
  if (bytes <= capacity_) return false;
  const bool grew = capacity_ > 0;
  bytes = (bytes + (size_t{2} << 20) - 1) / (size_t{2} << 20) * (size_t{2} << 20);  // whole 2 MiB
  void* p = alloc_anonymous(bytes);
  free_anonymous(base_, capacity_);
  base_ = static_cast<uint8_t*>(p);
  capacity_ = bytes;
  used_ = 0;
  return grew;
}

Model::Model(const ModelShape& shape, ModelWeights weights, const KvLayout& kv, Isa isa,
             size_t threads, size_t max_batch_tokens, size_t max_seqs, RankShard shard)
    : shape_(shape), w_(std::move(weights)), kv_(kv), k_(model_kernels(isa)), pool_(threads),
      shard_(std::move(shard)) {
  bool fp8 = w_.lm_head.fp8();
  for (const LayerWeights& lw : w_.layers) {
    fp8 = fp8 || lw.qkv.fp8() || lw.o.fp8() || lw.gate_up.fp8() || lw.down.fp8();
    fp8_down_ = fp8_down_ || lw.down.fp8();
  }
  if (fp8) f8_ = w_.fp8 != nullptr ? w_.fp8 : troupe::fp8_kernels_table(isa);
  if (shard_.parallel()) {
    if (!shard_.group) throw std::invalid_argument("a tensor-parallel rank needs its group");
    const size_t need = std::max(shape_.vocab, kRowSegments * shape_.hidden) * sizeof(float);
    if (shard_.group->capacity() < need)
      throw std::invalid_argument("the tensor group's all-reduce capacity is " +
                                  std::to_string(shard_.group->capacity()) + " bytes; this model needs at least " +
                                  std::to_string(need) + " (one row of logits or of row-parallel partials)");
  }
  kv_pages_.resize(shape_.layers, nullptr);
  try {
    for (size_t l = 0; l < shape_.layers; ++l) kv_pages_[l] = alloc_anonymous(kv_.layer_bytes());
    // The arena for the largest step expected: every token of a full batch, every
    // sequence sampled (with top-p records), prompt logprobs with the largest top-n
    // (20) on a full row chunk.
    StepSizes z;
    z.tokens = std::max<size_t>(max_batch_tokens, 1);
    z.sampled_rows = std::min(std::max<size_t>(max_seqs, 1), z.tokens);
    z.sample_entries = z.sampled_rows;
    z.nucleus_entries = z.sample_entries;
    z.logit_rows = z.tokens;
    z.prompt_top_n = 20;
    arena_.reserve(scratch_bytes(z));
  } catch (...) {
    for (void* p : kv_pages_) free_anonymous(p, kv_.layer_bytes());
    throw;
  }
}

Model::~Model() {
  for (void* p : kv_pages_) free_anonymous(p, kv_.layer_bytes());
}

std::string Model::validate(const StepInput& in) const {
  const size_t T = in.tokens.size(), S = in.query_lens.size();
  if (in.positions.size() != T) return "positions must have one entry per token";
  if (in.slot_mapping.size() != T) return "slotMapping must have one entry per token";
  if (in.context_lens.size() != S) return "contextLens must have one entry per sequence";
  if (in.block_tables.size() != S * in.max_blocks)
    return "blockTables must hold sequences * maxBlocksPerSeq entries";
  size_t row = 0;
  const size_t bs = kv_.block_size;
  for (size_t s = 0; s < S; ++s) {
    const int32_t q = in.query_lens[s], c = in.context_lens[s];
    if (q < 0 || c < q) return "sequence " + std::to_string(s) + ": need 0 <= queryLen <= contextLen";
    const size_t blocks = (static_cast<size_t>(c) + bs - 1) / bs;
    if (blocks > in.max_blocks)
      return "sequence " + std::to_string(s) + ": context of " + std::to_string(c) +
             " tokens needs " + std::to_string(blocks) + " blocks, block table has " +
             std::to_string(in.max_blocks);
    for (size_t b = 0; b < blocks; ++b) {
      const int32_t page = in.block_tables[s * in.max_blocks + b];
      if (page < 0 || static_cast<size_t>(page) >= kv_.num_blocks)
        return "sequence " + std::to_string(s) + ": block table entry " + std::to_string(b) +
               " = " + std::to_string(page) + " is not a page of the cache (0.." +
               std::to_string(kv_.num_blocks - 1) + ")";
    }
    for (int32_t i = 0; i < q; ++i, ++row) {
      if (row >= T) return "query lens add up to more than the number of tokens";
      const int32_t pos = c - q + i;
      if (in.positions[row] != pos)
        return "token " + std::to_string(row) + ": position " + std::to_string(in.positions[row]) +
               " but sequence " + std::to_string(s) + " puts it at " + std::to_string(pos);
      const int32_t page = in.block_tables[s * in.max_blocks + static_cast<size_t>(pos) / bs];
      const int64_t want = static_cast<int64_t>(page) * static_cast<int64_t>(bs) + pos % static_cast<int32_t>(bs);
      if (in.slot_mapping[row] != want)
        return "token " + std::to_string(row) + ": slot " + std::to_string(in.slot_mapping[row]) +
               " but its block table puts position " + std::to_string(pos) + " in slot " +
               std::to_string(want);
      if (in.tokens[row] < 0 || static_cast<size_t>(in.tokens[row]) >= shape_.vocab)
        return "token " + std::to_string(row) + ": id " + std::to_string(in.tokens[row]) +
               " is outside the vocabulary (0.." + std::to_string(shape_.vocab - 1) + ")";
    }
  }
  if (row != T) return "query lens add up to " + std::to_string(row) + ", not the " + std::to_string(T) + " tokens";
  if (!shard_.embeds && in.hidden.size() != T * shape_.hidden)
    return "hidden must hold the previous stage's residual stream, tokens * hidden = " +
           std::to_string(T * shape_.hidden) + " floats, got " + std::to_string(in.hidden.size());
  if (shard_.embeds && !in.hidden.empty()) return "hidden is for later pipeline stages; this rank embeds the tokens itself";
  if (in.sampling.params.size() != in.sample_rows.size()) return "one set of sampling params per sampled row";
  for (int32_t r : in.sample_rows)
    if (r < 0 || static_cast<size_t>(r) >= T) return "sample row " + std::to_string(r) + " is not a token row";
  // A grammar mask rewrites its row's logits in the lm head: no other entry may sample that row.
  for (size_t i = 0; i < in.sample_rows.size(); ++i)
    for (size_t j = 0; j < in.sample_rows.size(); ++j)
      if (i != j && in.sample_rows[i] == in.sample_rows[j] && in.sampling.params[i].mask != nullptr)
        return "sample row " + std::to_string(in.sample_rows[i]) + " has a grammar mask and is sampled more than once";
  if (!in.prompt_targets.empty()) {
    if (in.prompt_targets.size() != T) return "promptTargets must have one entry per token";
    for (int32_t t : in.prompt_targets)
      if (t >= 0 && static_cast<size_t>(t) >= shape_.vocab) return "prompt target " + std::to_string(t) + " is outside the vocabulary";
  }
  return "";
}

// This step's regions of the arena. Activations are fp32 row-major [T, cols];
// xb / actb are the bf16 GEMM inputs of bfloat16 mode.
struct Model::Buffers {
  float* h;          // [T, H] residual stream
  float* xn;         // [T, H] normalized
  float* qkv;        // [T, QKV]
  float* attn;       // [T, QC]
  float* gu;         // [T, 2I]
  float* act;        // [T, I] fp32 (float32 mode, or an FP8 down projection's input before quantizing)
  float* tmp;        // [T, H] o_proj / down_proj outputs before the residual add
  uint16_t* xb;      // [T, max(H, QC)] bf16 GEMM input (bfloat16 mode)
  uint16_t* actb;    // [T, I] bf16 SiLU-and-mul output (bfloat16 mode)
  float* xs;         // [T] per-token activation scales of an FP8 linear's input (in xb / actb)
  float* cos_sin;    // [T, D]
  // Logits (rows needing them, in passes of at most kLogitRowChunk rows).
  float* lxn;        // [rc, H]
  uint16_t* lxb;     // [rc, H] bf16 lm-head input (bfloat16 mode)
  float* lxs;        // [rc] its per-row scales when the lm head is FP8
  float* tiles;      // [threads, rc * kVocabTile] one vocab tile of logits per thread
  float* tile_max;   // [rc, vocab tiles]
  double* tile_sum;  // [rc, vocab tiles]
  float* top_v;      // [rc, vocab tiles, pn] per-tile top-n of prompt rows
  int32_t* top_i;    // [rc, vocab tiles, pn]
  float* target;     // [rc] the target token's logit
  float* full;       // [sampled rows, V] raw logits kept for sampling
  TileSummary* summaries;  // [sample entries, vocab tiles] the lm head's tile summaries (sampling.h)
  TileCandidates* candidates;  // [sample entries, vocab tiles] top-k / logprob candidates
  int32_t* nucleus_ids;        // [nucleus entries * nucleus_capacity(V)] top-p records (NucleusPool)
  float* nucleus_y;
  // Tensor parallelism only (model_parallel.h).
  uint8_t* seg_in;   // [segments][T][k_j] row-parallel GEMM input, by segment
  float* partials;   // [local segments, chunk rows, H] row-parallel partial sums
  float* gathered;   // [tp logit rows, V] full logits gathered from the group
  float* amax;       // [tp, T] the ranks' row absmax of an FP8 row-parallel input (row_linear_input)
};

size_t Model::scratch_bytes(const StepSizes& z) const {
  const ModelShape& s = shape_;
  const size_t T = z.tokens, H = s.hidden, I = s.intermediate, V = s.vocab;
  const size_t rc = std::min(z.logit_rows, kLogitRowChunk);
  const size_t tiles = (V + kVocabTile - 1) / kVocabTile;
  auto f = [](size_t n) { return ScratchArena::bytes_for(n, 4); };
  auto h2 = [](size_t n) { return ScratchArena::bytes_for(n, 2); };
  return f(T * H) * 3 + f(T * s.qkv_cols()) + f(T * s.q_cols()) + f(T * 2 * I) +
         (s.bf16 && !fp8_down_ ? 0 : f(T * I)) + (s.bf16 ? h2(T * std::max(H, s.q_cols())) + h2(T * I) : 0) +
         f(T) + f(T * s.head_dim) + f(rc * H) + (s.bf16 ? h2(rc * H) : 0) + f(rc) +
         f(pool_.threads() * rc * kVocabTile) + f(rc * tiles) + ScratchArena::bytes_for(rc * tiles, 8) +
         2 * f(rc * tiles * z.prompt_top_n) + f(rc) + f(z.sampled_rows * V) +
         ScratchArena::bytes_for(z.sample_entries * tiles, sizeof(TileSummary)) +
         ScratchArena::bytes_for(z.sample_entries * tiles, sizeof(TileCandidates)) +
         2 * f(z.nucleus_entries * nucleus_capacity(V)) + parallel_scratch_bytes(z);
}

// The tensor-parallel regions of Buffers (none at tp 1).
size_t Model::parallel_scratch_bytes(const StepSizes& z) const {
  if (!shard_.parallel()) return 0;
  const ModelShape& s = shape_;
  const size_t T = z.tokens, elem = s.bf16 ? 2 : 4;
  return ScratchArena::bytes_for(T * std::max(s.q_cols(), s.intermediate), elem) +
         ScratchArena::bytes_for(shard_.local_segments() * tp_chunk_rows(T) * s.hidden, 4) +
         ScratchArena::bytes_for(std::min(z.logit_rows, tp_logit_rows()) * s.vocab, 4) +
         ScratchArena::bytes_for(shard_.tp_size * T, 4);
}

LinearInput Model::linear_input(const Linear& lin, const float* x, uint16_t* xb, float* xs, size_t M, size_t K) {
  if (!shape_.bf16) return {x, nullptr};
  constexpr size_t kGrain = size_t{1} << 15;
  if (lin.fp8()) {  // per token: each row's scale from its own values only
    parallel_rows(M, std::max<size_t>(1, kGrain / K), [&](size_t r0, size_t r1) {
      k_->quantize_e4m3(x, xb, xs, r0, r1, K, lin.act_ub, lin.input_scale);
    });
    return {xb, xs};
  }
  const size_t n = M * K;
  if (n <= kGrain) {
    k_->round_bf16(x, xb, n);
  } else {
    parallel_rows(n, kGrain, [&](size_t i0, size_t i1) { k_->round_bf16(x + i0, xb + i0, i1 - i0); });
  }
  return {xb, nullptr};
}

template <typename After>
void Model::gemm(const Linear& lin, LinearInput input, float* out, size_t M, size_t N, size_t K,
                 size_t segments, After after) {
  counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
  counters_.weight_bytes_read.fetch_add(N * K * lin.elem_bytes(), std::memory_order_relaxed);
  linear_parallel(pool_, *k_, f8_, lin, input, out, M, N, K, N, segments, after);
}

void Model::layer(size_t l, float* x, size_t T, const StepInput& in, const Buffers& b,
                  const std::vector<int32_t>& qstart, const std::vector<AttentionTask>& tasks) {
  const ModelShape& s = shape_;
  const LayerWeights& lw = w_.layers[l];
  const size_t H = s.hidden, D = s.head_dim, QKV = s.qkv_cols(), QC = s.q_cols(), KC = s.kv_cols(),
               I = s.intermediate;
  const size_t row_grain = std::max<size_t>(1, 8192 / H);

  // Attention block.
  parallel_rows(T, row_grain, [&](size_t r0, size_t r1) { k_->rms_norm(x, lw.input_norm, b.xn, r0, r1, H, s.rms_eps); });
  gemm(lw.qkv, linear_input(lw.qkv, b.xn, b.xb, b.xs, T, H), b.qkv, T, QKV, H, 1, NoEpilogue{});
  const KvLayout lkv = layer_kv(l);
  parallel_rows(T, std::max<size_t>(1, 4096 / QKV), [&](size_t r0, size_t r1) {
    k_->rope(b.qkv, QKV, s.heads, D, b.cos_sin, r0, r1);
    k_->rope(b.qkv + QC, QKV, s.kv_heads, D, b.cos_sin, r0, r1);
    k_->kv_write(b.qkv + QC, b.qkv + QC + KC, QKV, in.slot_mapping.data(), r0, r1, kv_pages_[l], lkv);
  });
  AttentionArgs a;
  a.q = b.qkv;
  a.ld_q = QKV;
  a.out = b.attn;
  a.ld_out = QC;
  a.kv = kv_pages_[l];
  a.layout = lkv;
  a.query_start = qstart.data();
  a.context_lens = in.context_lens.data();
  a.block_tables = in.block_tables.data();
  a.max_blocks = in.max_blocks;
  a.num_heads = s.heads;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  if (lkv.fp8 != KvFp8::None) {  // FP8 cache: codes are k / k_scale and v / v_scale (kv_layout.h)
    a.scale = a.scale * lkv.k_scale;
    a.v_scale = lkv.v_scale;
  }
  pool_.parallel_for(tasks.size(), [&](size_t t) { k_->attention(a, tasks.data(), t, t + 1); });
  add_row_linear(lw.o, row_linear_input(lw.o, b.attn, b.xb, b.xs, T, QC, b.amax), T, QC, x, b);

  // MLP block: gate and up columns [n0, n1) are computed by the same tile, then
  // SiLU-and-mul of those columns while they are in cache (bf16 mode: rounded
  // straight into the down projection's input; an FP8 down projection needs
  // whole rows for its per-token scales, so its input is quantized afterwards).
  parallel_rows(T, row_grain, [&](size_t r0, size_t r1) { k_->rms_norm(x, lw.post_norm, b.xn, r0, r1, H, s.rms_eps); });
  const bool bf16_act = s.bf16 && !lw.down.fp8();
  {
    const LinearInput input = linear_input(lw.gate_up, b.xn, b.xb, b.xs, T, H);
    counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
    counters_.weight_bytes_read.fetch_add(2 * I * H * lw.gate_up.elem_bytes(), std::memory_order_relaxed);
    const Linear gate = lw.gate_up.first_rows(I), up = lw.gate_up.rows_from(I, H);
    // gate into gu[:, 0:I), up into gu[:, I:2I) (row stride 2I), one tile of columns at a time.
    linear_parallel(pool_, *k_, f8_, gate, input, b.gu, T, I, H, 2 * I, 1, [&](size_t n0, size_t n1) {
      linear_tile(*k_, f8_, up, input, b.gu + I, T, n0, n1, 2 * I, H, 1);
      k_->silu_mul(b.gu, I, 0, T, n0, n1, bf16_act ? nullptr : b.act, bf16_act ? b.actb : nullptr);
    });
  }
  const LinearInput down_in = bf16_act ? LinearInput{b.actb, nullptr} : row_linear_input(lw.down, b.act, b.actb, b.xs, T, I, b.amax);
  add_row_linear(lw.down, down_in, T, I, x, b);
}

void Model::add_row_linear(const Linear& lin, LinearInput input, size_t T, size_t K, float* x, const Buffers& b) {
  if (shard_.parallel()) return row_parallel(lin, input, T, K, x, b.seg_in, b.partials);
  const size_t H = shape_.hidden;
  gemm(lin, input, b.tmp, T, H, K, kRowSegments, [&](size_t n0, size_t n1) {  // x += tmp, columns [n0, n1) of every row
    for (size_t r = 0; r < T; ++r)
      for (size_t n = n0; n < n1; ++n) x[r * H + n] = x[r * H + n] + b.tmp[r * H + n];
  });
}

StepOutput Model::step(const StepInput& in) {
  std::lock_guard<std::mutex> lock(step_mu_);
  const ModelShape& s = shape_;
  const size_t T = in.tokens.size(), S = in.query_lens.size(), H = s.hidden, D = s.head_dim;
  counters_.steps.fetch_add(1, std::memory_order_relaxed);
  counters_.tokens.fetch_add(T, std::memory_order_relaxed);

  // Rows that need logits (sampled rows and rows with a prompt-logprob target), in increasing order.
  StepSizes z;
  z.tokens = T;
  z.sample_entries = in.sample_rows.size();
  for (const SamplingParams& p : in.sampling.params) z.nucleus_entries += records_nucleus(p) ? 1 : 0;
  {
    std::vector<uint8_t> sampled(T, 0);
    for (int32_t r : in.sample_rows) sampled[r] = 1;
    for (size_t t = 0; t < T; ++t) {
      z.sampled_rows += sampled[t];
      if (sampled[t] || (!in.prompt_targets.empty() && in.prompt_targets[t] >= 0)) ++z.logit_rows;
    }
    z.prompt_top_n = in.prompt_targets.empty() ? 0 : std::min(in.prompt_top_n, s.vocab);
  }
  if (arena_.reserve(scratch_bytes(z))) counters_.scratch_growths.fetch_add(1, std::memory_order_relaxed);
  arena_.reset();
  Buffers b{};
  const size_t rc = std::min(z.logit_rows, kLogitRowChunk);
  const size_t vtiles = (s.vocab + kVocabTile - 1) / kVocabTile;
  b.h = arena_.take<float>(T * H);
  b.xn = arena_.take<float>(T * H);
  b.tmp = arena_.take<float>(T * H);
  b.qkv = arena_.take<float>(T * s.qkv_cols());
  b.attn = arena_.take<float>(T * s.q_cols());
  b.gu = arena_.take<float>(T * 2 * s.intermediate);
  b.act = s.bf16 && !fp8_down_ ? nullptr : arena_.take<float>(T * s.intermediate);
  b.xb = s.bf16 ? arena_.take<uint16_t>(T * std::max(H, s.q_cols())) : nullptr;
  b.actb = s.bf16 ? arena_.take<uint16_t>(T * s.intermediate) : nullptr;
  b.xs = arena_.take<float>(T);
  b.cos_sin = arena_.take<float>(T * D);
  b.lxn = arena_.take<float>(rc * H);
  b.lxb = s.bf16 ? arena_.take<uint16_t>(rc * H) : nullptr;
  b.lxs = arena_.take<float>(rc);
  b.tiles = arena_.take<float>(pool_.threads() * rc * kVocabTile);
  b.tile_max = arena_.take<float>(rc * vtiles);
  b.tile_sum = arena_.take<double>(rc * vtiles);
  b.top_v = arena_.take<float>(rc * vtiles * z.prompt_top_n);
  b.top_i = arena_.take<int32_t>(rc * vtiles * z.prompt_top_n);
  b.target = arena_.take<float>(rc);
  b.full = arena_.take<float>(z.sampled_rows * s.vocab);
  b.summaries = arena_.take<TileSummary>(z.sample_entries * vtiles);
  b.candidates = arena_.take<TileCandidates>(z.sample_entries * vtiles);
  b.nucleus_ids = arena_.take<int32_t>(z.nucleus_entries * nucleus_capacity(s.vocab));
  b.nucleus_y = arena_.take<float>(z.nucleus_entries * nucleus_capacity(s.vocab));
  if (shard_.parallel()) {
    b.seg_in = arena_.take<uint8_t>(T * std::max(s.q_cols(), s.intermediate) * (s.bf16 ? 2 : 4));
    b.partials = arena_.take<float>(shard_.local_segments() * tp_chunk_rows(T) * H);
    b.gathered = arena_.take<float>(std::min(z.logit_rows, tp_logit_rows()) * s.vocab);
    b.amax = arena_.take<float>(shard_.tp_size * T);
  }
  counters_.peak_scratch_bytes.store(arena_.high_water(), std::memory_order_relaxed);

  // Embedding lookup (first stage), or the previous stage's residual stream.
  float* x = b.h;
  if (!shard_.embeds) {
    std::copy(in.hidden.begin(), in.hidden.end(), x);
  } else {
    embed_tokens(in, x);
  }

  // RoPE angles per token: angle = fp32(inv_freq) * fp32(pos), rounded to fp32
  // (as HF computes them), then cos / sin of that angle rounded to fp32.
  const size_t half = D / 2;
  for (size_t t = 0; t < T; ++t) {
    const float pos = static_cast<float>(in.positions[t]);
    for (size_t i = 0; i < half; ++i) {
      const float angle = w_.inv_freq[i] * pos;
      b.cos_sin[t * D + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      b.cos_sin[t * D + half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }

  // Attention tasks: per sequence, per kv head (its whole GQA group), per kAttentionRows query rows.
  std::vector<int32_t> qstart(S + 1, 0);
  for (size_t q = 0; q < S; ++q) qstart[q + 1] = qstart[q] + in.query_lens[q];
  std::vector<AttentionTask> tasks;
  for (size_t q = 0; q < S; ++q)
    for (size_t g = 0; g < s.kv_heads; ++g)
      for (int32_t r = 0; r < in.query_lens[q]; r += kAttentionRows)
        tasks.push_back({static_cast<uint32_t>(q), static_cast<uint32_t>(g), static_cast<uint32_t>(r),
                         static_cast<uint32_t>(std::min<int32_t>(in.query_lens[q], r + kAttentionRows))});

  for (size_t l = 0; l < s.layers; ++l) layer(l, x, T, in, b, qstart, tasks);

  StepOutput out;
  if (!shard_.lm_head) {  // not the last stage: the residual stream goes on to the next one
    out.hidden.assign(x, x + T * H);
    return out;
  }
  logits_and_sampling(x, T, in, b, out);
  return out;
}

// The lm head, per pass of up to kLogitRowChunk rows: one parallel job whose
// items are vocab tiles (kVocabTile columns). An item computes its tile's
// logits for all the pass's rows into its thread's tile buffer, then per row
// the tile's (max, sum of exp) for the streaming log-sum-exp, the sampled
// rows' copy into `full`, the prompt target's logit and the tile's top-n.
// Tiles are combined afterwards in tile order, so the results are those of a
// sequential sweep over the vocabulary, whatever thread ran which tile.
void Model::logits_and_sampling(const float* x, size_t T, const StepInput& in, const Buffers& b,
                                StepOutput& out) {
  const ModelShape& s = shape_;
  const size_t H = s.hidden, V = s.vocab, R = in.sample_rows.size();
  const bool prompt = !in.prompt_targets.empty();
  const size_t pn = prompt ? std::min(in.prompt_top_n, V) : 0;
  const size_t vtiles = (V + kVocabTile - 1) / kVocabTile;

  std::vector<int32_t> rows;
  std::vector<int32_t> sample_slot(T, -1);  // row -> index into the full-logits buffer
  for (size_t r = 0; r < R; ++r) sample_slot[in.sample_rows[r]] = 0;
  for (size_t t = 0; t < T; ++t)
    if (sample_slot[t] >= 0 || (prompt && in.prompt_targets[t] >= 0)) rows.push_back(static_cast<int32_t>(t));
  size_t uniq = 0;
  for (size_t t = 0; t < T; ++t)
    if (sample_slot[t] >= 0) sample_slot[t] = static_cast<int32_t>(uniq++);
  float* full = b.full;  // [uniq sampled rows, V]
  // Sample entries by row (entry_order[entry_start[t] .. entry_start[t + 1]) sample row t),
  // and each entry's running k-th best for the top-k candidates of its tiles.
  std::vector<uint32_t> entry_start(T + 1, 0), entry_order(R);
  for (size_t r = 0; r < R; ++r) ++entry_start[in.sample_rows[r] + 1];
  for (size_t t = 0; t < T; ++t) entry_start[t + 1] += entry_start[t];
  {
    std::vector<uint32_t> fill(entry_start.begin(), entry_start.end() - 1);
    for (size_t r = 0; r < R; ++r) entry_order[fill[in.sample_rows[r]]++] = static_cast<uint32_t>(r);
  }
  std::unique_ptr<RowBounds[]> kth(new RowBounds[R > 0 ? R : 1]);
  std::vector<double> lse(T, 0.0);
  NucleusPool nucleus;  // the top-p rows' records
  nucleus.ids = b.nucleus_ids;
  nucleus.y = b.nucleus_y;
  for (const SamplingParams& p : in.sampling.params) nucleus.capacity += records_nucleus(p) ? nucleus_capacity(V) : 0;

  if (prompt) {
    out.prompt_logprob.assign(T, NAN);
    out.prompt_top_ids.assign(T * pn, -1);
    out.prompt_top_logprobs.assign(T * pn, NAN);
  }

  // Tensor parallelism: each pass gathers the rows' full logits from the group
  // (model_parallel.cc); only tp rank 0 goes on to sample.
  const bool tp = shard_.parallel();
  const bool sampler = !tp || shard_.tp_rank == 0;
  const size_t row_chunk = tp ? std::min(kLogitRowChunk, tp_logit_rows()) : kLogitRowChunk;
  for (size_t c0 = 0; c0 < rows.size(); c0 += row_chunk) {
    const size_t rc = std::min(row_chunk, rows.size() - c0);
    for (size_t i = 0; i < rc; ++i) {
      std::copy(x + rows[c0 + i] * H, x + (rows[c0 + i] + 1) * H, b.lxn + i * H);
      b.target[i] = NAN;
    }
    k_->rms_norm(b.lxn, w_.final_norm, b.lxn, 0, rc, H, s.rms_eps);
    const LinearInput input = linear_input(w_.lm_head, b.lxn, b.lxb, b.lxs, rc, H);
    if (tp) {
      gather_logits(input, rc, b.gathered);
      if (!sampler) continue;
    } else {
      counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
      counters_.weight_bytes_read.fetch_add(V * H * w_.lm_head.elem_bytes(), std::memory_order_relaxed);
    }
    pool_.parallel_for(vtiles, [&](size_t vt_i) {
      const size_t v0 = vt_i * kVocabTile, vt = std::min(kVocabTile, V - v0);
      // This tile's logits, [rc, vt] with row stride ld: computed here, or read from the gathered rows.
      float* logits = tp ? b.gathered + v0 : b.tiles + ThreadPool::current_index() * rc * kVocabTile;
      const size_t ld = tp ? V : vt;
      if (!tp) linear_tile(*k_, f8_, w_.lm_head.rows_from(v0, H), input, logits, rc, 0, vt, vt, H, 1);
      for (size_t i = 0; i < rc; ++i) {
        float* li = logits + i * ld;  // writable: a grammar mask rewrites it
        const int32_t row = rows[c0 + i];
        // A grammar row's disallowed tokens are masked as the log-sum-exp first reads
        // the tile (validate: a masked row has one sample entry), so the tile
        // summaries, the records and the copy in `full` all see the masked row.
        const uint32_t* mask = sample_slot[row] >= 0 ? in.sampling.params[entry_order[entry_start[row]]].mask : nullptr;
        tile_lse(*k_, li, vt, v0, mask, &b.tile_max[i * vtiles + vt_i], &b.tile_sum[i * vtiles + vt_i]);
        if (sample_slot[row] >= 0) {
          std::copy(li, li + vt, full + sample_slot[row] * V + v0);
          // What the row's sampling can use of this tile, while it is in cache.
          static thread_local SamplingScratch sc;
          for (size_t e = entry_start[row]; e < entry_start[row + 1]; ++e) {
            const size_t r = entry_order[e];
            TileSummary* ts = b.summaries + r * vtiles + vt_i;
            ts->max = b.tile_max[i * vtiles + vt_i];
            ts->sum = b.tile_sum[i * vtiles + vt_i];
            summarize_tile(li, vt, v0, in.sampling.params[r], *k_, sc, ts,
                           b.candidates + r * vtiles + vt_i, &kth[r], &nucleus);
          }
        }
        if (prompt && in.prompt_targets[row] >= 0) {
          const size_t target = static_cast<size_t>(in.prompt_targets[row]);
          if (target >= v0 && target < v0 + vt) b.target[i] = li[target - v0];
          // This tile's top pn by (value desc, id asc): ties keep the lower id (seen first).
          float* tv = b.top_v + (i * vtiles + vt_i) * pn;
          int32_t* ti = b.top_i + (i * vtiles + vt_i) * pn;
          for (size_t k = 0; k < pn; ++k) tv[k] = -INFINITY, ti[k] = -1;
          for (size_t j = 0; pn > 0 && j < vt; ++j) {
            if (!(li[j] > tv[pn - 1])) continue;
            size_t k = pn - 1;
            while (k > 0 && li[j] > tv[k - 1]) {
              tv[k] = tv[k - 1];
              ti[k] = ti[k - 1];
              --k;
            }
            tv[k] = li[j];
            ti[k] = static_cast<int32_t>(v0 + j);
          }
        }
      }
    });
    // Combine the tiles in order: log-sum-exp, then the prompt rows' top-n (the
    // tiles' lists merged by the same insertion rule, which keeps the sequential order).
    std::vector<float> tv(pn);
    std::vector<int32_t> ti(pn);
    for (size_t i = 0; i < rc; ++i) {
      const int32_t row = rows[c0 + i];
      float run_max = -INFINITY;
      double run_sum = 0.0;
      for (size_t t = 0; t < vtiles; ++t) lse_combine(b.tile_max[i * vtiles + t], b.tile_sum[i * vtiles + t], &run_max, &run_sum);
      lse[row] = static_cast<double>(run_max) + std::log(run_sum);

      if (prompt && in.prompt_targets[row] >= 0) {
        out.prompt_logprob[row] = static_cast<float>(static_cast<double>(b.target[i]) - lse[row]);
        std::fill(tv.begin(), tv.end(), -INFINITY);
        std::fill(ti.begin(), ti.end(), -1);
        for (size_t t = 0; t < vtiles; ++t)
          for (size_t j = 0; j < pn; ++j) {
            const float v = b.top_v[(i * vtiles + t) * pn + j];
            if (!(v > tv[pn - 1])) break;  // this tile's list is sorted: nothing after it enters either
            size_t k = pn - 1;
            while (k > 0 && v > tv[k - 1]) {
              tv[k] = tv[k - 1];
              ti[k] = ti[k - 1];
              --k;
            }
            tv[k] = v;
            ti[k] = b.top_i[(i * vtiles + t) * pn + j];
          }
        for (size_t k = 0; k < pn; ++k) {
          out.prompt_top_ids[row * pn + k] = ti[k];
          out.prompt_top_logprobs[row * pn + k] = static_cast<float>(static_cast<double>(tv[k]) - lse[row]);
        }
      }
    }
  }

  if (!sampler) return;  // a tp rank other than 0: its share of the logits went to rank 0

  // Raw logits go out before sampling may modify its rows in place.
  if (in.return_logits) {
    out.logits.resize(R * V);
    for (size_t r = 0; r < R; ++r) {
      const float* row = full + static_cast<size_t>(sample_slot[in.sample_rows[r]]) * V;
      std::copy(row, row + V, out.logits.data() + r * V);
    }
  }

  // Sampling: one row per task, each with its own scratch.
  size_t top_n = 0;
  for (const SamplingParams& p : in.sampling.params) top_n = std::max<size_t>(top_n, p.num_logprobs > 0 ? static_cast<size_t>(p.num_logprobs) : 0);
  top_n = std::min(top_n, V);
  out.top_n = top_n;
  out.sampled.assign(R, -1);
  out.sampled_logprob.assign(R, NAN);
  out.top_ids.assign(R * top_n, -1);
  out.top_logprobs.assign(R * top_n, NAN);
  pool_.parallel_for(R, [&](size_t r) {
    static thread_local SamplingScratch sc;  // per compute thread, reused across steps
    const int32_t row = in.sample_rows[r];
    SamplingParams p = in.sampling.params[r];
    if (p.num_logprobs > static_cast<int32_t>(top_n)) p.num_logprobs = static_cast<int32_t>(top_n);
    const size_t slot = static_cast<size_t>(sample_slot[row]);
    const RowStats stats = row_stats(b.summaries + r * vtiles, vtiles, b.candidates + r * vtiles, &nucleus);
    const size_t from_records = sc.nucleus_from_records;
    sample_row(full + slot * V, V, lse[row], &stats, p, sc, *k_, &out.sampled[r],
               &out.sampled_logprob[r], out.top_ids.data() + r * top_n, out.top_logprobs.data() + r * top_n);
    if (records_nucleus(p)) counters_.top_p_rows.fetch_add(1, std::memory_order_relaxed);
    if (sc.nucleus_from_records != from_records) counters_.top_p_from_records.fetch_add(1, std::memory_order_relaxed);
  });
}

}  // namespace troupe
