#include "model.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "bf16.h"

namespace troupe {
namespace {

constexpr size_t kRowSegments = 8;     // K segments of o_proj and down_proj (gemm_impl.h)
constexpr size_t kLogitRowChunk = 256;  // rows needing logits per pass over the lm head (4 MiB of tile)
constexpr size_t kAttentionRows = 64;  // query rows per attention task

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <typename T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

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

Model::Model(const ModelShape& shape, ModelWeights weights, const KvLayout& kv, Isa isa,
             size_t threads)
    : shape_(shape), w_(std::move(weights)), kv_(kv), k_(model_kernels(isa)), pool_(threads) {
  kv_pages_.resize(shape_.layers, nullptr);
  try {
    for (size_t l = 0; l < shape_.layers; ++l) kv_pages_[l] = alloc_anonymous(kv_.layer_bytes());
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
  if (in.sampling.params.size() != in.sample_rows.size()) return "one set of sampling params per sampled row";
  for (int32_t r : in.sample_rows)
    if (r < 0 || static_cast<size_t>(r) >= T) return "sample row " + std::to_string(r) + " is not a token row";
  if (!in.prompt_targets.empty()) {
    if (in.prompt_targets.size() != T) return "promptTargets must have one entry per token";
    for (int32_t t : in.prompt_targets)
      if (t >= 0 && static_cast<size_t>(t) >= shape_.vocab) return "prompt target " + std::to_string(t) + " is outside the vocabulary";
  }
  return "";
}

template <typename F>
void Model::parallel_rows(size_t rows, size_t grain, F fn) {
  if (grain == 0) grain = 1;
  const size_t tasks = (rows + grain - 1) / grain;
  if (tasks <= 1) {
    if (rows > 0) fn(size_t{0}, rows);
    return;
  }
  pool_.parallel_for(tasks, [&](size_t t) { fn(t * grain, std::min(rows, (t + 1) * grain)); });
}

void Model::gemm(const void* w, const float* x, float* out, size_t M, size_t N, size_t K,
                 size_t segments, std::vector<uint16_t>& xb) {
  counters_.gemm_calls.fetch_add(1, std::memory_order_relaxed);
  counters_.weight_bytes_read.fetch_add(N * K * (shape_.bf16 ? 2 : 4), std::memory_order_relaxed);
  if (M == 0 || N == 0) return;
  const uint16_t* xr = nullptr;
  if (shape_.bf16) {
    grow(xb, M * K);
    round_fp32_to_bf16(x, xb.data(), M * K);
    xr = xb.data();
  }
  // Threads split N (never K) in slices of whole register blocks.
  const size_t work = M * N * K;
  const size_t slices = work < (size_t{1} << 16) ? 1 : std::min<size_t>(N / 16 + 1, pool_.threads() * 8);
  const size_t step = ((N + slices - 1) / slices + 15) / 16 * 16;
  const size_t tasks = (N + step - 1) / step;
  auto run = [&](size_t t) {
    const size_t n0 = t * step, n1 = std::min(N, n0 + step);
    if (shape_.bf16)
      k_->gemm_bf16(static_cast<const uint16_t*>(w), xr, out, M, n0, n1, N, K, segments);
    else
      k_->gemm_f32(static_cast<const float*>(w), x, out, M, n0, n1, N, K, segments);
  };
  if (tasks <= 1) run(0);
  else pool_.parallel_for(tasks, run);
}

void Model::layer(size_t l, float* x, size_t T, const StepInput& in,
                  const std::vector<int32_t>& qstart, const std::vector<AttentionTask>& tasks,
                  const std::vector<float>& cos_sin) {
  const ModelShape& s = shape_;
  const LayerWeights& lw = w_.layers[l];
  const size_t H = s.hidden, D = s.head_dim, QKV = s.qkv_cols(), QC = s.q_cols(), KC = s.kv_cols(),
               I = s.intermediate;
  const size_t row_grain = std::max<size_t>(1, 8192 / H);

  parallel_rows(T, row_grain, [&](size_t r0, size_t r1) { k_->rms_norm(x, lw.input_norm, xn_.data(), r0, r1, H, s.rms_eps); });
  gemm(lw.qkv, xn_.data(), qkv_.data(), T, QKV, H, 1, xb_);
  parallel_rows(T, std::max<size_t>(1, 4096 / QKV), [&](size_t r0, size_t r1) {
    k_->rope(qkv_.data(), QKV, s.heads, D, cos_sin.data(), r0, r1);
    k_->rope(qkv_.data() + QC, QKV, s.kv_heads, D, cos_sin.data(), r0, r1);
    k_->kv_write(qkv_.data() + QC, qkv_.data() + QC + KC, QKV, in.slot_mapping.data(), r0, r1,
                 kv_pages_[l], kv_);
  });

  AttentionArgs a;
  a.q = qkv_.data();
  a.ld_q = QKV;
  a.out = attn_.data();
  a.ld_out = QC;
  a.kv = kv_pages_[l];
  a.layout = kv_;
  a.query_start = qstart.data();
  a.context_lens = in.context_lens.data();
  a.block_tables = in.block_tables.data();
  a.max_blocks = in.max_blocks;
  a.num_heads = s.heads;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  pool_.parallel_for(tasks.size(), [&](size_t t) { k_->attention(a, tasks.data(), t, t + 1); });

  gemm(lw.o, attn_.data(), tmp_.data(), T, H, QC, kRowSegments, xb_);
  for (size_t i = 0; i < T * H; ++i) x[i] = x[i] + tmp_[i];

  parallel_rows(T, row_grain, [&](size_t r0, size_t r1) { k_->rms_norm(x, lw.post_norm, xn_.data(), r0, r1, H, s.rms_eps); });
  gemm(lw.gate_up, xn_.data(), gu_.data(), T, 2 * I, H, 1, xb_);
  parallel_rows(T, std::max<size_t>(1, 8192 / I), [&](size_t r0, size_t r1) { k_->silu_mul(gu_.data(), act_.data(), r0, r1, I); });
  gemm(lw.down, act_.data(), tmp_.data(), T, H, I, kRowSegments, xb_);
  for (size_t i = 0; i < T * H; ++i) x[i] = x[i] + tmp_[i];
}

StepOutput Model::step(const StepInput& in) {
  std::lock_guard<std::mutex> lock(step_mu_);
  const ModelShape& s = shape_;
  const size_t T = in.tokens.size(), S = in.query_lens.size(), H = s.hidden, D = s.head_dim;
  counters_.steps.fetch_add(1, std::memory_order_relaxed);
  counters_.tokens.fetch_add(T, std::memory_order_relaxed);

  grow(h_, T * H);
  grow(xn_, T * H);
  grow(qkv_, T * s.qkv_cols());
  grow(attn_, T * s.q_cols());
  grow(gu_, T * 2 * s.intermediate);
  grow(act_, T * s.intermediate);
  grow(tmp_, T * H);
  const size_t scratch = 4 * (h_.size() + xn_.size() + qkv_.size() + attn_.size() + gu_.size() +
                              act_.size() + tmp_.size()) +
                         2 * xb_.size();
  if (scratch > counters_.peak_scratch_bytes.load()) counters_.peak_scratch_bytes.store(scratch);

  // Embedding lookup.
  float* x = h_.data();
  for (size_t t = 0; t < T; ++t) {
    const size_t id = static_cast<size_t>(in.tokens[t]);
    if (s.bf16) {
      const uint16_t* e = static_cast<const uint16_t*>(w_.embed) + id * H;
      for (size_t i = 0; i < H; ++i) x[t * H + i] = bits_to_float(static_cast<uint32_t>(e[i]) << 16);
    } else {
      const float* e = static_cast<const float*>(w_.embed) + id * H;
      std::copy(e, e + H, x + t * H);
    }
  }

  // RoPE angles per token: angle = fp32(inv_freq) * fp32(pos), rounded to fp32
  // (as HF computes them), then cos / sin of that angle rounded to fp32.
  std::vector<float> cos_sin(T * D);
  const size_t half = D / 2;
  for (size_t t = 0; t < T; ++t) {
    const float pos = static_cast<float>(in.positions[t]);
    for (size_t i = 0; i < half; ++i) {
      const float angle = w_.inv_freq[i] * pos;
      cos_sin[t * D + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      cos_sin[t * D + half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }

  std::vector<int32_t> qstart(S + 1, 0);
  for (size_t q = 0; q < S; ++q) qstart[q + 1] = qstart[q] + in.query_lens[q];
  std::vector<AttentionTask> tasks;
  for (size_t q = 0; q < S; ++q)
    for (size_t h = 0; h < s.heads; ++h)
      for (int32_t r = 0; r < in.query_lens[q]; r += kAttentionRows)
        tasks.push_back({static_cast<uint32_t>(q), static_cast<uint32_t>(h), static_cast<uint32_t>(r),
                         static_cast<uint32_t>(std::min<int32_t>(in.query_lens[q], r + kAttentionRows))});

  for (size_t l = 0; l < s.layers; ++l) layer(l, x, T, in, qstart, tasks, cos_sin);

  StepOutput out;
  logits_and_sampling(x, T, in, out);
  return out;
}

void Model::logits_and_sampling(const float* x, size_t T, const StepInput& in, StepOutput& out) {
  const ModelShape& s = shape_;
  const size_t H = s.hidden, V = s.vocab, R = in.sample_rows.size();
  const bool prompt = !in.prompt_targets.empty();
  const size_t pn = prompt ? std::min(in.prompt_top_n, V) : 0;

  // Rows that need logits, in increasing order; sampled rows keep full logits.
  std::vector<int32_t> rows;
  std::vector<int32_t> sample_slot(T, -1);  // row -> index into the full-logits buffer
  for (size_t r = 0; r < R; ++r) sample_slot[in.sample_rows[r]] = 0;
  for (size_t t = 0; t < T; ++t)
    if (sample_slot[t] >= 0 || (prompt && in.prompt_targets[t] >= 0)) rows.push_back(static_cast<int32_t>(t));
  std::vector<int32_t> uniq_sampled;
  for (size_t t = 0; t < T; ++t)
    if (sample_slot[t] >= 0) {
      sample_slot[t] = static_cast<int32_t>(uniq_sampled.size());
      uniq_sampled.push_back(static_cast<int32_t>(t));
    }
  std::vector<float> full(uniq_sampled.size() * V);  // [sampled rows, V]
  std::vector<double> lse(T, 0.0);

  if (prompt) {
    out.prompt_logprob.assign(T, NAN);
    out.prompt_top_ids.assign(T * pn, -1);
    out.prompt_top_logprobs.assign(T * pn, NAN);
  }

  std::vector<float> xn(kLogitRowChunk * H), logits(kLogitRowChunk * kVocabTile);
  std::vector<float> run_max(kLogitRowChunk), target_logit(kLogitRowChunk);
  std::vector<double> run_sum(kLogitRowChunk);
  // Per-row top-n of the prompt rows: sorted (value desc, id asc), pn entries.
  std::vector<float> top_v(kLogitRowChunk * pn);
  std::vector<int32_t> top_i(kLogitRowChunk * pn);
  for (size_t c0 = 0; c0 < rows.size(); c0 += kLogitRowChunk) {
    const size_t rc = std::min(kLogitRowChunk, rows.size() - c0);
    for (size_t i = 0; i < rc; ++i) {
      std::copy(x + rows[c0 + i] * H, x + (rows[c0 + i] + 1) * H, xn.data() + i * H);
      run_max[i] = -INFINITY;
      run_sum[i] = 0.0;
      target_logit[i] = NAN;
    }
    std::fill(top_v.begin(), top_v.end(), -INFINITY);
    std::fill(top_i.begin(), top_i.end(), -1);
    k_->rms_norm(xn.data(), w_.final_norm, xn.data(), 0, rc, H, s.rms_eps);
    for (size_t v0 = 0; v0 < V; v0 += kVocabTile) {
      const size_t vt = std::min(kVocabTile, V - v0);
      const void* wt = s.bf16 ? static_cast<const void*>(static_cast<const uint16_t*>(w_.lm_head) + v0 * H)
                              : static_cast<const void*>(static_cast<const float*>(w_.lm_head) + v0 * H);
      gemm(wt, xn.data(), logits.data(), rc, vt, H, 1, xb_);
      parallel_rows(rc, 1, [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          const float* li = logits.data() + i * vt;
          const int32_t row = rows[c0 + i];
          float tm;
          double ts;
          k_->tile_lse(li, vt, &tm, &ts);
          lse_combine(tm, ts, &run_max[i], &run_sum[i]);
          if (sample_slot[row] >= 0) std::copy(li, li + vt, full.data() + sample_slot[row] * V + v0);
          if (prompt && in.prompt_targets[row] >= 0) {
            const size_t target = static_cast<size_t>(in.prompt_targets[row]);
            if (target >= v0 && target < v0 + vt) target_logit[i] = li[target - v0];
            float* tv = top_v.data() + i * pn;
            int32_t* ti = top_i.data() + i * pn;
            for (size_t j = 0; pn > 0 && j < vt; ++j) {
              if (!(li[j] > tv[pn - 1])) continue;  // ties keep the lower id (seen first)
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
    }
    for (size_t i = 0; i < rc; ++i) {
      const int32_t row = rows[c0 + i];
      lse[row] = static_cast<double>(run_max[i]) + std::log(run_sum[i]);
      if (prompt && in.prompt_targets[row] >= 0) {
        out.prompt_logprob[row] = static_cast<float>(static_cast<double>(target_logit[i]) - lse[row]);
        for (size_t k = 0; k < pn; ++k) {
          out.prompt_top_ids[row * pn + k] = top_i[i * pn + k];
          out.prompt_top_logprobs[row * pn + k] = static_cast<float>(static_cast<double>(top_v[i * pn + k]) - lse[row]);
        }
      }
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
    sample_row(full.data() + sample_slot[row] * V, V, lse[row], p, sc, &out.sampled[r],
               &out.sampled_logprob[r], out.top_ids.data() + r * top_n, out.top_logprobs.data() + r * top_n);
  });
  if (in.return_logits) {
    out.logits.resize(R * V);
    for (size_t r = 0; r < R; ++r) {
      const float* row = full.data() + static_cast<size_t>(sample_slot[in.sample_rows[r]]) * V;
      std::copy(row, row + V, out.logits.data() + r * V);
    }
  }
}

}  // namespace troupe
