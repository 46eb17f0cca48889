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
//   6. y = logit * (1 / temperature) (fp32), m = max y
//   7. min-p: keep tokens with p >= min_p * p_max, i.e. y >= m + log(min_p)
//   8. top-k: keep the k largest (partial selection)
//   9. top-p: keep the shortest prefix of the sorted survivors whose mass
//      reaches top_p, extended to the tokens tied with its last one
//      (partial selection over candidates that hold the nucleus: the tokens
//      the lm head recorded within kNucleusSpan of the row's max, when they
//      hold top_p of the mass; else a threshold scan of the row just below
//      the records' floor, or, with no records, below a cut estimated from a
//      strided sample. Among many candidates a mass histogram by sixteenths
//      of a nat locates the cut, and a weighted quickselect over the exact
//      weights of the sixteenths around it finds it)
//  10. draw u = uniform(seed, output_index) and walk the survivors' cumulative
//      mass: in sorted order when they were sorted (top-k, a top-p prefix
//      within the best 256), else in id order (the same distribution)
// Ties sort by lower id, so every step is deterministic. The random number is
// counter based: the same (seed, output index) always gives the same u, so a
// request recomputed after preemption or a restart samples the same tokens.
//
// Penalties and bias change a few hundred logits at most: they are kept as a
// sparse list (id, raw, penalized) rather than a penalized copy of the row.
//
// Cost. Every step is one vectorized pass over the row at most, or a
// selection that skips 16 logits per compare: greedy is an argmax; top-n
// logprobs and top-k are threshold selections (a block of 16 below the
// running k-th value is skipped whole). With the lm head's tile summaries
// (TileSummary: per tile the log-sum-exp state and, at a temperature other
// than 1, the weights' sum; for top-p the tokens near the row's max), plain
// sampling reads one tile of the row (the draw's) and top-p its recorded
// candidates (a compare pass over the row when they fall short); a penalized row
// corrects the tiles' masses for its changed logits (their raw weights out,
// penalized weights in; when that would cancel more than half the mass, the
// dense path runs). The weights p_i = exp(y_i - m) are fp32 (the model's exp,
// ~2 ulp), summed in fp64; top-k survivors use fp64 exp. Min-p, and
// penalized greedy or top-k rows, take the dense path: a penalized copy, one
// vectorized exp pass with block sums. bench/sampling.bench.ts measures it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <cmath>
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
  // A grammar's token mask, packed: bit (id % 32) of word id / 32 set = token id
  // allowed (xgrammar's bitmask layout), ceil(V / 32) words; null: every token.
  const uint32_t* mask = nullptr;
};

struct ModelKernels;

// The logit a masked-out token gets, before anything reads the row (the lm
// head's tile summaries and records, the log-sum-exp, every sampling path):
// finite, so that a tile the mask empties still has a finite max and sum
// (-inf would give exp(-inf - -inf) = NaN) and temperature scaling stays
// finite, yet so low that its weight exp(y - m) is 0 and it is never greedy's
// argmax while any token is allowed. The returned logprobs are therefore
// those of the masked distribution, as vLLM's (a masked token's is ~-1e30).
constexpr float kMaskedLogit = -1e30f;

// One vocab tile's log-sum-exp state (k.tile_lse). With a grammar's mask, first
// sets logits[j] = kMaskedLogit for each j in [0, n) whose id v0 + j the mask
// disallows (v0 a multiple of 32), and the state is that of the masked tile.
void tile_lse(const ModelKernels& k, float* logits, size_t n, size_t v0, const uint32_t* mask, float* tile_max,
              double* tile_sum);

// Params for R rows plus the storage their pointers point into (moving a
// SamplingBatch keeps the pointers valid; never resize the vectors afterwards).
struct SamplingBatch {
  std::vector<SamplingParams> params;
  std::vector<int32_t> prompt_tokens, output_tokens, bias_ids;
  std::vector<float> bias_values;
  std::vector<uint32_t> masks;  // [masked rows, ceil(V / 32)] grammar token masks
};

// Per-thread scratch so sampling allocates once per row at most.
struct SamplingScratch {
  std::vector<float> work;     // [V] penalized logits (only when a penalty or bias applies)
  std::vector<float> e;        // [V] exp(y - m) of the survivors
  std::vector<double> sums;    // [V / kSampleBlock] block sums of e
  std::vector<uint64_t> keys;  // sampled sort keys (top-p over a long prefix)
  std::vector<uint64_t> band;  // sort keys of the bracket's tokens
  std::vector<int32_t> index;  // candidate ids
  std::vector<double> prob;    // candidate weights
  // What penalties and bias change, as a sparse list (sampling.cc collect_changes):
  // the ids (sorted, unique), each one's raw logit and its penalized value.
  std::vector<int32_t> changed_ids;
  std::vector<float> changed_raw, changed_value;
  std::vector<int32_t> changed_count;  // per changed id: occurrences in the output (-1: not seen)
  std::vector<int32_t> cand;           // nucleus candidates (ids ascending)
  std::vector<float> cand_y, cand_w;   // their scaled logits and weights
  std::vector<int32_t> bins;           // per candidate: its cut bin (sampling.cc cut_bin)
  std::vector<float> merged_y;         // cand_y with the changes merged in (finish_candidates)
  std::vector<int32_t> stage_ids;      // a tile's top-p records before they go to the pool
  std::vector<float> stage_y;
  std::vector<double> tile_mass;       // per vocab tile: its mass in the row's frame
  size_t nucleus_from_records = 0;     // rows whose top-p nucleus came from the tiles' records
};

// Uniform double in [0, 1) from (seed, index): splitmix64 of the pair.
double counter_uniform(uint64_t seed, uint64_t index);

// The top n (id, logprob) of a row by value desc, id asc; logprob = logit - lse.
void top_logprobs(const float* logits, size_t V, double lse, size_t n, SamplingScratch& scratch,
                  const ModelKernels& k, int32_t* ids, float* logprobs);

// What the lm head records per vocab tile (kVocabTile logits) of a sampled
// row while the tile is in cache, so that sampling rarely reads the row again:
// the log-sum-exp state always, and what the row's parameters can use
// (summarize_tile): greedy the tile's argmax; top-k (k <= kFusedTopK) the
// tile's best k at or above the row's running k-th best (top-n logprobs
// likewise, on raw logits); plain sampling at a temperature other than 1 the
// tile's sum of weights, also for top-p and for penalized rows (whose few
// changed logits sampling corrects for); top-p the tile's tokens within
// kNucleusSpan of the row's running largest y (into the step's NucleusPool).
// Min-p, and penalized greedy or top-k rows, read the row.
struct TileSummary {
  float max = -INFINITY;  // the tile's largest raw logit
  double sum = 0.0;       // sum of exp(l - max)
  int32_t arg = -1;       // greedy: the lowest id holding max
  int32_t count = 0;      // top-k: candidates recorded
  int32_t lp_count = 0;   // top-n logprobs: candidates recorded
  double wsum = 0.0;      // temperature t != 1: sum of exp((l - max) / t), exp_blocks' weights
  bool weighted = false;  // wsum was computed (plain, top-p and penalized sampling at t != 1)
  // Top-p: the tile recorded every token with raw y = l / t > nucleus_floor, ids
  // ascending, nucleus_count of them at NucleusPool entry nucleus_at (+inf: nothing recorded).
  float nucleus_floor = INFINITY;
  int32_t nucleus_count = 0;
  size_t nucleus_at = 0;
};
constexpr size_t kFusedTopK = 64;
constexpr size_t kFusedLogprobs = 20;  // the largest top-n of logprobs (models/sampling.ts MAX_LOGPROBS)
// Top-p records: the span (in scaled logits y) below the row's running largest
// y that a tile records. The nucleus lies within it unless the row's mass is
// spread over more than ~e^10 times its top token's weight (then sampling
// scans the row): the 0.9 nucleus of a Gaussian row of 128K logits ends about
// 8 below its max, whatever the spread.
constexpr float kNucleusSpan = 10.0f;
// A tile records at most kNucleusPerTile tokens: when more lie within the
// span, those above its kNucleusPerTile-th best y (its floor rises; a row so
// flat that a floor rises above its nucleus cut is scanned instead).
constexpr size_t kNucleusPerTile = 256;

// A tile's candidate ids (absolute vocabulary ids), what summarize_tile records.
struct TileCandidates {
  int32_t topk[kFusedTopK];          // top-k: TileSummary::count of them
  int32_t logprobs[kFusedLogprobs];  // top-n raw logprobs: TileSummary::lp_count
  float topk_y[kFusedTopK];          // their y = l * (1 / t), as the tile computed them
  float logprobs_y[kFusedLogprobs];  // their raw logits
};

// The top-p records of a step's rows, in one pool: a tile reserves room for its
// tokens with one atomic add, and records nothing when the pool is full (it
// never is when it holds kNucleusPerTile per tile of every top-p row).
struct NucleusPool {
  int32_t* ids = nullptr;  // vocabulary ids, ascending within a tile
  float* y = nullptr;      // their raw scaled logits y = l * (1 / t)
  size_t capacity = 0;
  std::atomic<size_t> used{0};
};

// A NucleusPool with its own storage, for `rows` top-p rows of V logits (benches, tests).
struct OwnedNucleusPool {
  std::vector<int32_t> ids;
  std::vector<float> y;
  NucleusPool pool;
  OwnedNucleusPool(size_t rows, size_t V);
};

// A row's running bounds while its tiles are summarized (any order, any thread).
struct RowBounds {
  std::atomic<float> topk{-INFINITY};      // a lower bound of the row's k-th best y
  std::atomic<float> logprobs{-INFINITY};  // a lower bound of its n-th best raw logit
  std::atomic<float> ymax{-INFINITY};      // top-p: the largest y of the tiles so far
  std::atomic<float> floor{-INFINITY};     // top-p: the highest floor a tile recorded above
  void reset();                            // every bound back to -inf (a new step)
};

// A row's summaries: `count` tiles, their candidates and top-p records (may be null).
struct RowStats {
  float max;  // the row's largest raw logit
  const TileSummary* tiles;
  size_t count;
  const TileCandidates* cand;
  const NucleusPool* nucleus = nullptr;
};
// The RowStats of `count` summarized tiles (max: the largest tile max).
RowStats row_stats(const TileSummary* tiles, size_t count, const TileCandidates* cand, const NucleusPool* nucleus);

// Fills t's fields that p can use, from the tile's logits l[0, n) whose first id
// is v0 (t->max and t->sum already set); cand: the tile's candidate slots.
// bounds: the row's running k-th / n-th best among the tiles summarized so far
// (any order, any thread; they only prune: the best of the row are always
// among the candidates). pool: where top-p rows record (null: they do not).
void summarize_tile(const float* l, size_t n, size_t v0, const SamplingParams& p,
                    const ModelKernels& k, SamplingScratch& scratch, TileSummary* t, TileCandidates* cand,
                    RowBounds* bounds, NucleusPool* pool);

// Whether summarize_tile records top-p candidates for a row with these params.
bool records_nucleus(const SamplingParams& p);

// The lm head's per-tile epilogue over a whole row of V logits, tile by tile
// (benches and tests; the model runs it inside its vocab-tile tasks): the
// grammar's mask applied when there is one (in place), each tile's log-sum-exp
// state into tiles[], and when p is given its summary (summarize_tile).
// Returns the row's log-sum-exp.
double summarize_row(float* row, size_t V, const uint32_t* mask, const SamplingParams* p, const ModelKernels& k,
                     SamplingScratch& scratch, TileSummary* tiles, TileCandidates* cand, RowBounds* bounds,
                     NucleusPool* pool);

// Samples a token from one row of raw logits [V] whose log-sum-exp is `lse`
// (the row is not modified). Writes the token, its raw logprob, and
// params.num_logprobs top entries. `k`: the ISA's kernels (model_kernels.h).
// `stats` (may be null): the lm head's tile summaries of the row.
void sample_row(const float* logits, size_t V, double lse, const RowStats* stats,
                const SamplingParams& params, SamplingScratch& scratch, const ModelKernels& k,
                int32_t* token, float* token_logprob, int32_t* top_ids, float* top_lps);

// log-sum-exp of a row, in the same tiles and order as the model's lm head.
double row_logsumexp(const float* logits, size_t V,
                     void (*tile_lse)(const float*, size_t, float*, double*));

// Vocabulary tile width of the lm head and of row_logsumexp.
constexpr size_t kVocabTile = 4096;

// NucleusPool entries that a top-p row over V logits may take.
constexpr size_t nucleus_capacity(size_t V) { return (V + kVocabTile - 1) / kVocabTile * kNucleusPerTile; }

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
