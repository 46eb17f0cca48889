#include "sampling.h"

#include <algorithm>
#include <cmath>

namespace troupe {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Orders ids by value desc, then id asc.
struct ByValueDesc {
  const float* v;
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// Puts the `n` best of index[0, count) first, sorted.
void select_sorted(int32_t* index, size_t count, size_t n, const float* values) {
  if (n < count) std::nth_element(index, index + n, index + count, ByValueDesc{values});
  std::sort(index, index + std::min(n, count), ByValueDesc{values});
}

void apply_penalties(float* work, size_t V, const SamplingParams& p, SamplingScratch& s) {
  for (size_t i = 0; i < p.num_bias; ++i) {
    const int32_t id = p.bias_ids[i];
    if (id >= 0 && static_cast<size_t>(id) < V) work[id] += p.bias_values[i];
  }
  if (p.repetition_penalty != 1.0f) {
    s.seen.assign(V, 0);
    auto mark = [&](const int32_t* ids, size_t n) {
      for (size_t i = 0; i < n; ++i)
        if (ids[i] >= 0 && static_cast<size_t>(ids[i]) < V) s.seen[ids[i]] = 1;
    };
    mark(p.prompt_tokens, p.num_prompt_tokens);
    mark(p.output_tokens, p.num_output_tokens);
    for (size_t i = 0; i < V; ++i)
      if (s.seen[i]) work[i] = work[i] > 0 ? work[i] / p.repetition_penalty : work[i] * p.repetition_penalty;
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    std::vector<int32_t> ids(p.output_tokens, p.output_tokens + p.num_output_tokens);
    std::sort(ids.begin(), ids.end());
    for (size_t i = 0; i < ids.size();) {
      size_t j = i;
      while (j < ids.size() && ids[j] == ids[i]) ++j;
      const int32_t id = ids[i];
      if (id >= 0 && static_cast<size_t>(id) < V)
        work[id] -= p.frequency_penalty * static_cast<float>(j - i) + p.presence_penalty;
      i = j;
    }
  }
}

}  // namespace

double counter_uniform(uint64_t seed, uint64_t index) {
  const uint64_t z = splitmix64(splitmix64(seed) ^ splitmix64(index ^ 0x5851F42D4C957F2Dull));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

double row_logsumexp(const float* logits, size_t V,
                     void (*tile_lse)(const float*, size_t, float*, double*)) {
  float run_max = -INFINITY;
  double run_sum = 0.0;
  for (size_t v0 = 0; v0 < V; v0 += kVocabTile) {
    float tm;
    double ts;
    tile_lse(logits + v0, std::min(kVocabTile, V - v0), &tm, &ts);
    lse_combine(tm, ts, &run_max, &run_sum);
  }
  return static_cast<double>(run_max) + std::log(run_sum);
}

void top_logprobs(const float* logits, size_t V, double lse, size_t n, SamplingScratch& s,
                  int32_t* ids, float* logprobs) {
  n = std::min(n, V);
  if (n == 0) return;
  s.index.resize(V);
  for (size_t i = 0; i < V; ++i) s.index[i] = static_cast<int32_t>(i);
  select_sorted(s.index.data(), V, n, logits);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = s.index[i];
    logprobs[i] = static_cast<float>(static_cast<double>(logits[s.index[i]]) - lse);
  }
}

void sample_row(const float* logits, size_t V, double lse, const SamplingParams& p,
                SamplingScratch& s, int32_t* token, float* token_logprob, int32_t* top_ids,
                float* top_lps) {
  if (p.num_logprobs > 0) top_logprobs(logits, V, lse, static_cast<size_t>(p.num_logprobs), s, top_ids, top_lps);

  s.work.assign(logits, logits + V);
  float* work = s.work.data();
  apply_penalties(work, V, p, s);

  int32_t chosen = 0;
  if (!(p.temperature >= 1e-5f)) {  // greedy (also for NaN temperature, rejected upstream)
    for (size_t i = 1; i < V; ++i)
      if (work[i] > work[chosen]) chosen = static_cast<int32_t>(i);
  } else {
    float mx = -INFINITY;
    for (size_t i = 0; i < V; ++i) {
      work[i] = work[i] / p.temperature;
      mx = work[i] > mx ? work[i] : mx;
    }
    // min-p: p_i >= min_p * p_max  <=>  work_i >= mx + log(min_p).
    const float floor = p.min_p > 0.0f ? static_cast<float>(mx + std::log(static_cast<double>(p.min_p))) : -INFINITY;
    s.index.clear();
    for (size_t i = 0; i < V; ++i)
      if (work[i] >= floor) s.index.push_back(static_cast<int32_t>(i));
    size_t count = s.index.size();
    int32_t* idx = s.index.data();
    bool sorted = false;
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < count) {
      select_sorted(idx, count, static_cast<size_t>(p.top_k), work);
      count = static_cast<size_t>(p.top_k);
      sorted = true;
    }
    s.prob.resize(count);
    double total = 0.0;
    for (size_t i = 0; i < count; ++i) total += std::exp(static_cast<double>(work[idx[i]]) - mx);
    if (p.top_p < 1.0f) {
      const double want = static_cast<double>(p.top_p) * total;
      size_t m = sorted ? count : std::min<size_t>(count, 64);
      size_t cut = count;
      for (;;) {
        if (!sorted) select_sorted(idx, count, m, work);  // the top m, sorted
        double cum = 0.0;
        bool found = false;
        for (size_t i = 0; i < m && !found; ++i) {
          cum += std::exp(static_cast<double>(work[idx[i]]) - mx);
          if (cum >= want) {
            cut = i + 1;
            found = true;
          }
        }
        if (found || m == count) break;
        m = std::min(count, m * 2);
      }
      count = std::min(cut, count);
      sorted = true;
    }
    total = 0.0;
    for (size_t i = 0; i < count; ++i) {
      s.prob[i] = std::exp(static_cast<double>(work[idx[i]]) - mx);
      total += s.prob[i];
    }
    const double target = counter_uniform(p.seed, p.output_index) * total;
    double cum = 0.0;
    chosen = idx[count - 1];
    for (size_t i = 0; i < count; ++i) {
      cum += s.prob[i];
      if (cum > target) {
        chosen = idx[i];
        break;
      }
    }
  }
  *token = chosen;
  *token_logprob = static_cast<float>(static_cast<double>(logits[chosen]) - lse);
}

}  // namespace troupe
