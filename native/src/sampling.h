// Sampling one token from a row of logits, and log-probabilities.
//
// Order of operations for one row (vLLM v1's):
//   1. raw log-probabilities: logprob[i] = logit[i] - logsumexp(logits); the
//      returned logprobs (sampled token, top-n) are these raw values
//   2. logit bias: logit[i] += bias[i]
//   3. repetition penalty r over every token seen (prompt and output):
//      logit > 0 ? logit / r : logit * r
//   4. frequency / presence penalties over output tokens:
//      logit -= frequency * count + presence * (count > 0)
//   5. temperature 0 (below 1e-5): greedy, the argmax (lowest id on ties); stop
//   6. logit /= temperature
//   7. min-p: keep tokens with p >= min_p * p_max
//   8. top-k: keep the k largest (partial selection, nth_element)
//   9. top-p: keep the shortest prefix of the sorted survivors whose mass
//      reaches top_p (partial selection: the top 64, 128, ... are sorted until
//      the prefix is found, never the whole vocabulary unless needed)
//  10. draw u = uniform(seed, output_index) and walk the survivors' cumulative
//      mass (in sorted order when sorted, else in id order)
// Ties sort by lower id, so every step is deterministic. The random number is
// counter based: the same (seed, output index) always gives the same u, so a
// request recomputed after preemption or a restart samples the same tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace troupe {

struct SamplingParams {
  float temperature = 1.0f;
  int32_t top_k = 0;  // <= 0: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  uint64_t seed = 0;
  uint64_t output_index = 0;
  int32_t num_logprobs = -1;  // top-n raw logprobs to return; < 0: none
  const int32_t* prompt_tokens = nullptr;
  size_t num_prompt_tokens = 0;
  const int32_t* output_tokens = nullptr;
  size_t num_output_tokens = 0;
  const int32_t* bias_ids = nullptr;
  const float* bias_values = nullptr;
  size_t num_bias = 0;
};

// Params for R rows plus the storage their pointers point into (moving a
// SamplingBatch keeps the pointers valid; never resize the vectors afterwards).
struct SamplingBatch {
  std::vector<SamplingParams> params;
  std::vector<int32_t> prompt_tokens, output_tokens, bias_ids;
  std::vector<float> bias_values;
};

// Per-thread scratch so sampling allocates once per row at most.
struct SamplingScratch {
  std::vector<float> work;     // [V] processed logits
  std::vector<int32_t> index;  // [V] candidate ids
  std::vector<double> prob;    // [V] candidate weights
  std::vector<uint8_t> seen;   // [V] repetition-penalty marks
};

// Uniform double in [0, 1) from (seed, index): splitmix64 of the pair.
double counter_uniform(uint64_t seed, uint64_t index);

// The top n (id, logprob) of a row by value desc, id asc; logprob = logit - lse.
void top_logprobs(const float* logits, size_t V, double lse, size_t n, SamplingScratch& scratch,
                  int32_t* ids, float* logprobs);

// Samples a token from one row of raw logits [V] whose log-sum-exp is `lse`.
// Writes the token, its raw logprob, and params.num_logprobs top entries.
void sample_row(const float* logits, size_t V, double lse, const SamplingParams& params,
                SamplingScratch& scratch, int32_t* token, float* token_logprob, int32_t* top_ids,
                float* top_lps);

// log-sum-exp of a row, in the same tiles and order as the model's lm head.
double row_logsumexp(const float* logits, size_t V,
                     void (*tile_lse)(const float*, size_t, float*, double*));

// Vocabulary tile width of the lm head and of row_logsumexp.
constexpr size_t kVocabTile = 4096;

// Combines a tile's (max, sum) into a running (max, sum), in tile order.
inline void lse_combine(float tile_max, double tile_sum, float* run_max, double* run_sum);

}  // namespace troupe

#include <cmath>

namespace troupe {
inline void lse_combine(float tile_max, double tile_sum, float* run_max, double* run_sum) {
  if (tile_max == -INFINITY) return;
  if (*run_max == -INFINITY) {
    *run_max = tile_max;
    *run_sum = tile_sum;
  } else if (tile_max > *run_max) {
    *run_sum = *run_sum * std::exp(static_cast<double>(*run_max) - tile_max) + tile_sum;
    *run_max = tile_max;
  } else {
    *run_sum = *run_sum + tile_sum * std::exp(static_cast<double>(tile_max) - *run_max);
  }
}
}  // namespace troupe
