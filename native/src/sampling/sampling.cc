#include "sampling/sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "kernels/model_kernels.h"

namespace troupe {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Orders ids by y = x * s desc, then id asc.
struct ByScaledDesc {
  const float* x;
  float s;
  bool operator()(int32_t a, int32_t b) const {
    const float ya = x[a] * s, yb = x[b] * s;
    return ya > yb || (ya == yb && a < b);
  }
};

// The m best ids by (y desc, id asc) among those with y > t, sorted, into out
// (fewer when fewer qualify). One pass of scan_greater: whenever the buffer
// fills, it keeps the best m and raises t to the worst kept value; a later id
// equal to it loses the tie, so `y > t` stays exact.
void select_top(const float* x, size_t n, float s, float t, size_t m, const ModelKernels& k,
                std::vector<int32_t>& out, bool sorted = true) {
  out.clear();
  if (m == 0) return;
  const size_t cap = std::max<size_t>(2 * m, m + 1024);
  thread_local std::vector<int32_t> buf;  // grows once per thread, never re-initialized
  if (buf.size() < cap) buf.resize(cap);
  const ByScaledDesc by{x, s};
  size_t count = 0, from = 0;
  while (from < n) {
    count += k.scan_greater(x, n, s, t, &from, buf.data() + count, cap - count);
    if (count == cap) {
      std::nth_element(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(m - 1), buf.begin() + static_cast<ptrdiff_t>(count), by);
      count = m;
      t = x[buf[m - 1]] * s;  // the m-th best so far: the best m are all at or above it
    }
  }
  if (count > m) std::nth_element(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(m - 1), buf.begin() + static_cast<ptrdiff_t>(count), by);
  count = std::min(count, m);
  if (sorted) std::sort(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(count), by);
  else if (count == m) std::nth_element(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(m - 1), buf.begin() + static_cast<ptrdiff_t>(m), by);  // the worst last
  out.assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(count));
}

// The logits that bias and penalties change, as a sparse list in scratch:
// changed_ids (sorted, unique), changed_raw (the raw logits) and changed_value
// (after vLLM's order: bias, then repetition over every token seen, then
// frequency / presence over the output's counts). A few hundred ids, never a
// pass over the vocabulary.
void collect_changes(const float* logits, size_t V, const SamplingParams& p, SamplingScratch& s) {
  std::vector<int32_t>& ids = s.changed_ids;
  ids.clear();
  auto valid = [V](int32_t id) { return id >= 0 && static_cast<size_t>(id) < V; };
  for (size_t i = 0; i < p.num_bias; ++i)
    if (valid(p.bias_ids[i])) ids.push_back(p.bias_ids[i]);
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool counted = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  if (repetition)
    for (size_t i = 0; i < p.num_prompt_tokens; ++i)
      if (valid(p.prompt_tokens[i])) ids.push_back(p.prompt_tokens[i]);
  if (repetition || counted)
    for (size_t i = 0; i < p.num_output_tokens; ++i)
      if (valid(p.output_tokens[i])) ids.push_back(p.output_tokens[i]);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const size_t n = ids.size();
  s.changed_raw.resize(n);
  s.changed_value.resize(n);
  s.changed_count.assign(n, -1);  // -1: not seen; else the output count
  for (size_t j = 0; j < n; ++j) s.changed_raw[j] = s.changed_value[j] = logits[ids[j]];
  auto slot = [&ids](int32_t id) { return static_cast<size_t>(std::lower_bound(ids.begin(), ids.end(), id) - ids.begin()); };
  for (size_t i = 0; i < p.num_bias; ++i)  // in the request's order, as a dense row would add them
    if (valid(p.bias_ids[i])) s.changed_value[slot(p.bias_ids[i])] += p.bias_values[i];
  for (size_t i = 0; i < p.num_prompt_tokens && repetition; ++i)
    if (valid(p.prompt_tokens[i])) s.changed_count[slot(p.prompt_tokens[i])] = 0;
  for (size_t i = 0; i < p.num_output_tokens && (repetition || counted); ++i)
    if (valid(p.output_tokens[i])) {
      int32_t& c = s.changed_count[slot(p.output_tokens[i])];
      c = c < 0 ? 1 : c + 1;
    }
  for (size_t j = 0; j < n; ++j) {
    float& v = s.changed_value[j];
    const int32_t c = s.changed_count[j];
    if (repetition && c >= 0) v = v > 0 ? v / p.repetition_penalty : v * p.repetition_penalty;
    if (counted && c > 0) v -= p.frequency_penalty * static_cast<float>(c) + p.presence_penalty;
  }
}

// The dense penalized row: a copy of the logits with the changes applied.
const float* penalized_row(const float* logits, size_t V, SamplingScratch& s) {
  s.work.assign(logits, logits + V);
  for (size_t j = 0; j < s.changed_ids.size(); ++j) s.work[s.changed_ids[j]] = s.changed_value[j];
  return s.work.data();
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
                  const ModelKernels& k, int32_t* ids, float* logprobs) {
  n = std::min(n, V);
  if (n == 0) return;
  select_top(logits, V, 1.0f, -INFINITY, n, k, s.index);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = i < s.index.size() ? s.index[i] : -1;
    logprobs[i] = i < s.index.size() ? static_cast<float>(static_cast<double>(logits[s.index[i]]) - lse) : NAN;
  }
}

namespace {

bool has_penalties(const SamplingParams& p) {
  return p.num_bias > 0 || p.repetition_penalty != 1.0f ||
         ((p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) && p.num_output_tokens > 0);
}

// Draws from weights w[0..count) (in the given order) with total `total`; returns the position.
size_t draw(const double* w, size_t count, double total, double u) {
  const double target = u * total;
  double cum = 0.0;
  for (size_t i = 0; i < count; ++i) {
    cum += w[i];
    if (cum > target) return i;
  }
  return count - 1;
}

}  // namespace

namespace {

// The block of a draw in id order from per-block masses sums[0, blocks): the
// one where the cumulative mass passes *target = u * their total; *cum: the
// mass of the blocks before it.
size_t locate_block(const double* sums, size_t blocks, double u, double* target, double* cum) {
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) total += sums[b];
  *target = u * total;
  *cum = 0.0;
  size_t b = 0;
  for (; b + 1 < blocks && *cum + sums[b] <= *target; ++b) *cum += sums[b];
  return b;
}

// Tokens of the nucleus (y >= y_cut) drawn in id order: block sums of their
// weights (given, or summed here), then the block where the cumulative mass
// passes u * total, walked token by token.
int32_t draw_id_order(const float* x, size_t V, float inv, float y_cut, const float* e, double u,
                      bool sums_ready, SamplingScratch& s, const ModelKernels& k, float m = 0.0f) {
  const size_t blocks = (V + kSampleBlock - 1) / kSampleBlock;
  if (!sums_ready) k.masked_sums(x, V, inv, y_cut, e, s.sums.data());
  double target, cum;
  const size_t b = locate_block(s.sums.data(), blocks, u, &target, &cum);
  int32_t chosen = -1;
  const size_t i0 = b * kSampleBlock, i1 = std::min(V, (b + 1) * kSampleBlock);
  const float* w = e == nullptr ? nullptr : e + i0;  // this block's weights
  if (w == nullptr) {  // not kept: computed again, as exp_blocks computed them
    double unused;
    s.e.resize(kSampleBlock);
    k.exp_blocks(x + i0, i1 - i0, inv, m, y_cut, s.e.data(), &unused);
    w = s.e.data();
  }
  for (size_t i = i0; i < i1; ++i) {
    const float wi = w[i - i0];
    if (!(x[i] * inv >= y_cut) || !(wi > 0.0f)) continue;
    cum += wi;
    chosen = static_cast<int32_t>(i);  // the last member so far (rounding can leave the target unmet)
    if (cum > target) break;
  }
  return chosen;
}

// A sort key for (y desc, id asc) as one unsigned compare: y's bits made
// monotonic, inverted, above the id.
inline uint64_t desc_key(float y, int32_t id) {
  uint32_t u;
  std::memcpy(&u, &y, sizeof u);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending in y
  return (static_cast<uint64_t>(~u) << 32) | static_cast<uint32_t>(id);
}
inline int32_t key_id(uint64_t key) { return static_cast<int32_t>(static_cast<uint32_t>(key)); }

// Weighted selection over keys (ascending = preferred first): reorders keys
// and returns the position p such that keys[p] is the first key, in sorted
// order, at which base + the cumulative weight reaches want (n - 1 when it
// never does). Quickselect on the weight: a partition's preferred side is
// summed and kept or skipped, so it costs O(n) and sorts only the last 64.
size_t weighted_select(uint64_t* keys, size_t n, double base, double want, const float* e, double scale) {
  size_t lo = 0, hi = n;
  while (hi - lo > 64) {
    const uint64_t a = keys[lo], b = keys[lo + (hi - lo) / 2], c = keys[hi - 1];
    const uint64_t pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));  // median of three
    uint64_t* mid = std::partition(keys + lo, keys + hi, [pivot](uint64_t k) { return k <= pivot; });
    const size_t m = static_cast<size_t>(mid - keys);
    double w = 0.0;
    for (size_t i = lo; i < m; ++i) w += static_cast<double>(e[key_id(keys[i])]) * scale;
    if (base + w >= want) {
      if (m == hi) break;  // cannot shrink (pivot was the largest): sort what is left
      hi = m;
    } else {
      base += w;
      lo = m;
    }
  }
  std::sort(keys + lo, keys + hi);
  for (size_t i = lo; i < hi; ++i) {
    base += static_cast<double>(e[key_id(keys[i])]) * scale;
    if (base >= want) return i;
  }
  return n == 0 ? 0 : hi - 1;
}

}  // namespace

namespace {

// This tile's best `want` by (y desc, id asc) at or above the row's bound, into
// cand and their y into cand_y; raises the bound when the tile alone holds `want`
// of them.
int32_t tile_candidates(const float* l, size_t n, size_t v0, float inv, size_t want,
                        const ModelKernels& k, SamplingScratch& s, int32_t* cand, float* cand_y,
                        std::atomic<float>* bound) {
  const float floor = bound->load(std::memory_order_relaxed);
  select_top(l, n, inv, std::nextafter(floor, -INFINITY), want, k, s.index, false);  // y >= floor, worst last
  for (size_t i = 0; i < s.index.size(); ++i) {
    cand[i] = static_cast<int32_t>(v0 + s.index[i]);
    cand_y[i] = l[s.index[i]] * inv;
  }
  if (s.index.size() == want) {
    const float kv = cand_y[want - 1];
    float cur = bound->load(std::memory_order_relaxed);
    while (kv > cur && !bound->compare_exchange_weak(cur, kv, std::memory_order_relaxed)) {
    }
  }
  return static_cast<int32_t>(s.index.size());
}

// The best `want` ids by (y desc, id asc) among the tiles' recorded candidates
// (their y as recorded: the row is not read), sorted.
void from_candidates(const RowStats& st, bool logprobs, size_t want, SamplingScratch& s,
                     std::vector<int32_t>& out) {
  s.keys.clear();
  for (size_t t = 0; t < st.count; ++t) {
    const int32_t n = logprobs ? st.tiles[t].lp_count : st.tiles[t].count;
    const int32_t* ids = logprobs ? st.cand[t].logprobs : st.cand[t].topk;
    const float* ys = logprobs ? st.cand[t].logprobs_y : st.cand[t].topk_y;
    for (int32_t i = 0; i < n; ++i) s.keys.push_back(desc_key(ys[i], ids[i]));
  }
  const size_t kk = std::min(s.keys.size(), want);
  std::nth_element(s.keys.begin(), s.keys.begin() + static_cast<ptrdiff_t>(kk), s.keys.end());
  std::sort(s.keys.begin(), s.keys.begin() + static_cast<ptrdiff_t>(kk));
  out.resize(kk);
  for (size_t i = 0; i < kk; ++i) out[i] = key_id(s.keys[i]);
}

// Raises an atomic to v when v is larger.
void raise_to(std::atomic<float>* a, float v) {
  float cur = a->load(std::memory_order_relaxed);
  while (v > cur && !a->compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

// Top-p: records the tile's tokens with y above a floor, ids ascending, into
// the pool: the row's running largest y minus kNucleusSpan, or the highest
// floor another tile of the row recorded above (sampling uses only the tokens
// above every tile's floor), raised further when more than kNucleusPerTile
// tokens lie above it. The running max only lowers the floor of the tiles seen
// early, so whatever the order the tiles come in every floor is at most the
// row's max y minus the span, or one a full tile needed.
void record_nucleus(const float* l, size_t n, size_t v0, float inv, const ModelKernels& k,
                    SamplingScratch& s, TileSummary* t, RowBounds* row, NucleusPool* pool) {
  const float ty = t->max * inv;  // rounding is monotonic: the tile's largest y
  raise_to(&row->ymax, ty);
  float floor = std::max(std::max(row->ymax.load(std::memory_order_relaxed), ty) - kNucleusSpan,
                         row->floor.load(std::memory_order_relaxed));
  if (!std::isfinite(floor) || !std::isfinite(ty)) return;  // infinite logits: not recorded, the row is scanned
  s.stage_ids.resize(n + 16);  // room for the whole vectors the scan stores
  s.stage_y.resize(n + 16);
  size_t count = k.scan_greater_pairs(l, n, inv, floor, static_cast<int32_t>(v0), s.stage_ids.data(), s.stage_y.data());
  if (count > kNucleusPerTile) {
    // Too many: the floor rises to the lowest of 64 steps between it and the
    // tile's max that leaves at most kNucleusPerTile (a count per step, then
    // one filter in place).
    constexpr int32_t kSteps = 64;
    const float step = (ty - floor) / kSteps, per_step = 1.0f / step;
    int32_t hits[4][kSteps + 1] = {};  // hits per step, counted from the top (four copies: no waits on one count)
    for (size_t i = 0; i < count; ++i)
      ++hits[i & 3][static_cast<int32_t>(std::min((ty - s.stage_y[i]) * per_step, static_cast<float>(kSteps)))];
    size_t kept = 0;
    int32_t j = 0;
    for (; j < kSteps; ++j) {
      const size_t in_step = static_cast<size_t>(hits[0][j] + hits[1][j] + hits[2][j] + hits[3][j]);
      if (kept + in_step > kNucleusPerTile) break;
      kept += in_step;
    }
    // Steps [0, j) fit: the floor is step j's upper edge, nudged up past any hit of step j rounding puts there.
    floor = std::max(floor, ty - static_cast<float>(j) * step);
    count = k.filter_greater(s.stage_ids.data(), s.stage_y.data(), count, floor, s.stage_ids.data(), s.stage_y.data());
    while (count > kNucleusPerTile) {  // rounding at the edge let a few more through
      floor = std::nextafter(floor, INFINITY);
      count = k.filter_greater(s.stage_ids.data(), s.stage_y.data(), count, floor, s.stage_ids.data(), s.stage_y.data());
    }
    raise_to(&row->floor, floor);
  }
  const size_t at = pool->used.fetch_add(count, std::memory_order_relaxed);
  if (at + count > pool->capacity) return;  // the pool is full: this row scans
  std::memcpy(pool->ids + at, s.stage_ids.data(), count * sizeof(int32_t));
  std::memcpy(pool->y + at, s.stage_y.data(), count * sizeof(float));
  t->nucleus_at = at;
  t->nucleus_count = static_cast<int32_t>(count);
  t->nucleus_floor = floor;
}

}  // namespace

void summarize_tile(const float* l, size_t n, size_t v0, const SamplingParams& p,
                    const ModelKernels& k, SamplingScratch& s, TileSummary* t, TileCandidates* cand,
                    RowBounds* bounds, NucleusPool* pool) {
  t->arg = -1;
  t->count = 0;
  t->lp_count = 0;
  t->wsum = 0.0;
  t->weighted = false;
  t->nucleus_floor = INFINITY;
  t->nucleus_count = 0;
  t->nucleus_at = 0;
  if (n == 0) return;
  if (p.num_logprobs > 0 && static_cast<size_t>(p.num_logprobs) <= kFusedLogprobs)  // raw logits
    t->lp_count = tile_candidates(l, n, v0, 1.0f, static_cast<size_t>(p.num_logprobs), k, s,
                                  cand->logprobs, cand->logprobs_y, &bounds->logprobs);
  const bool penalized = has_penalties(p);
  if (!(p.temperature >= 1e-5f)) {  // greedy
    if (penalized) return;
    float mx;
    size_t i;
    k.argmax(l, n, &mx, &i);
    t->arg = static_cast<int32_t>(v0 + i);
    return;
  }
  const float inv = 1.0f / p.temperature;
  if (p.top_k > 0) {
    if (!penalized && static_cast<size_t>(p.top_k) <= kFusedTopK)
      t->count = tile_candidates(l, n, v0, inv, static_cast<size_t>(p.top_k), k, s, cand->topk, cand->topk_y,
                                 &bounds->topk);
    return;
  }
  // Plain and top-p sampling (penalized or not: the raw weights, corrected
  // later for the few changed logits): the tile's weights at this temperature
  // (at temperature 1 the log-sum-exp state already holds them).
  if (p.min_p <= 0.0f && inv != 1.0f) {
    double sums[(kVocabTile + kSampleBlock - 1) / kSampleBlock];
    k.exp_blocks(l, n, inv, t->max * inv, -INFINITY, nullptr, sums);
    double w = 0.0;
    for (size_t b = 0; b < (n + kSampleBlock - 1) / kSampleBlock; ++b) w += sums[b];
    t->wsum = w;
    t->weighted = true;
  }
  if (pool != nullptr && p.top_p < 1.0f && p.min_p <= 0.0f) record_nucleus(l, n, v0, inv, k, s, t, bounds, pool);
}

bool records_nucleus(const SamplingParams& p) {
  return p.temperature >= 1e-5f && p.top_k <= 0 && p.min_p <= 0.0f && p.top_p < 1.0f;
}

OwnedNucleusPool::OwnedNucleusPool(size_t rows, size_t V) : ids(rows * nucleus_capacity(V)), y(ids.size()) {
  pool.ids = ids.data();
  pool.y = y.data();
  pool.capacity = ids.size();
}

void RowBounds::reset() {
  topk.store(-INFINITY);
  logprobs.store(-INFINITY);
  ymax.store(-INFINITY);
  floor.store(-INFINITY);
}

void tile_lse(const ModelKernels& k, float* logits, size_t n, size_t v0, const uint32_t* mask, float* tile_max,
              double* tile_sum) {
  if (mask != nullptr) k.masked_tile_lse(logits, n, mask + v0 / 32, kMaskedLogit, tile_max, tile_sum);
  else k.tile_lse(logits, n, tile_max, tile_sum);
}

RowStats row_stats(const TileSummary* tiles, size_t count, const TileCandidates* cand, const NucleusPool* nucleus) {
  RowStats st{-INFINITY, tiles, count, cand, nucleus};
  for (size_t t = 0; t < count; ++t) st.max = std::max(st.max, tiles[t].max);
  return st;
}

double summarize_row(float* row, size_t V, const uint32_t* mask, const SamplingParams* p, const ModelKernels& k,
                     SamplingScratch& s, TileSummary* tiles, TileCandidates* cand, RowBounds* bounds,
                     NucleusPool* pool) {
  float run_max = -INFINITY;
  double run_sum = 0.0;
  for (size_t t = 0, v0 = 0; v0 < V; ++t, v0 += kVocabTile) {
    const size_t n = std::min(kVocabTile, V - v0);
    tile_lse(k, row + v0, n, v0, mask, &tiles[t].max, &tiles[t].sum);
    lse_combine(tiles[t].max, tiles[t].sum, &run_max, &run_sum);
    if (p != nullptr) summarize_tile(row + v0, n, v0, *p, k, s, &tiles[t], &cand[t], bounds, pool);
  }
  return static_cast<double>(run_max) + std::log(run_sum);
}

namespace {

// Candidates s.cand[0, n) (ids ascending) with their raw y in s.cand_y: the
// changes in scratch applied when `changed` (a changed id's raw entry out, its
// penalized y in when above y_lo), then their weights exp(y - m) into
// s.cand_w. Returns their mass (fp64, exp_blocks' block sums in id order).
double finish_candidates(size_t n, float inv, float m, float y_lo, bool changed, SamplingScratch& s,
                         const ModelKernels& k) {
  std::vector<int32_t>& cand = s.cand;
  std::vector<float>& ys = s.cand_y;
  if (changed) {  // merged by id, so the ids stay ascending
    const std::vector<int32_t>& ids = s.changed_ids;
    s.index.clear();
    s.merged_y.clear();
    size_t a = 0, b = 0;
    while (a < n || b < ids.size()) {
      if (b == ids.size() || (a < n && cand[a] < ids[b])) {
        s.index.push_back(cand[a]);
        s.merged_y.push_back(ys[a++]);
      } else {
        if (a < n && cand[a] == ids[b]) ++a;
        const float y = s.changed_value[b] * inv;
        if (y > y_lo) {
          s.index.push_back(ids[b]);
          s.merged_y.push_back(y);
        }
        ++b;
      }
    }
    n = s.index.size();
    if (cand.size() < n) cand.resize(n);
    std::copy(s.index.begin(), s.index.end(), cand.begin());
    ys.assign(s.merged_y.begin(), s.merged_y.end());
  }
  ys.resize(n);
  s.cand_w.resize(n);
  s.sums.resize(n / kSampleBlock + 2);
  k.exp_blocks(ys.data(), n, 1.0f, m, -INFINITY, s.cand_w.data(), s.sums.data());
  double mass = 0.0;
  for (size_t b = 0; b < (n + kSampleBlock - 1) / kSampleBlock; ++b) mass += s.sums[b];
  return mass;
}

// The tokens with y = x * inv > y_lo (ids ascending; the changes in scratch
// applied when `changed`) into s.cand, their y into s.cand_y and their
// weights exp(y - m) into s.cand_w; returns their mass (finish_candidates).
double collect_candidates(const float* x, size_t V, float inv, float m, float y_lo, bool changed,
                          SamplingScratch& s, const ModelKernels& k) {
  std::vector<int32_t>& cand = s.cand;  // room for V; its first cand_y.size() entries are the candidates
  if (cand.size() < V) cand.resize(V);
  size_t from = 0;
  const size_t n = k.scan_greater(x, V, inv, y_lo, &from, cand.data(), V);
  s.cand_y.resize(n);
  for (size_t j = 0; j < n; ++j) s.cand_y[j] = x[cand[j]] * inv;
  return finish_candidates(n, inv, m, y_lo, changed, s, k);
}

// Draws among the candidates with y >= y_cut in id order: their weights'
// sums per block of kSampleBlock candidates (vector lanes), then the block
// where the cumulative mass passes u * kept, walked candidate by candidate.
int32_t draw_kept(float y_cut, double u, SamplingScratch& s, const ModelKernels& k) {
  const std::vector<float>& ys = s.cand_y;
  const std::vector<float>& ws = s.cand_w;
  const size_t n = ys.size(), blocks = (n + kSampleBlock - 1) / kSampleBlock;
  if (n == 0) return -1;
  s.sums.resize(blocks);
  k.masked_sums(ys.data(), n, 1.0f, y_cut, ws.data(), s.sums.data());
  double target, cum;
  const size_t b = locate_block(s.sums.data(), blocks, u, &target, &cum);
  int32_t chosen = -1;
  for (size_t j = b * kSampleBlock; j < std::min(n, (b + 1) * kSampleBlock); ++j) {
    if (!(ys[j] >= y_cut) || !(ws[j] > 0.0f)) continue;
    cum += ws[j];
    chosen = s.cand[j];  // the last member so far (rounding can leave the target unmet)
    if (cum > target) break;
  }
  for (size_t j = b * kSampleBlock; chosen < 0 && j-- > 0;)  // rounding ran past the last member's block
    if (ys[j] >= y_cut && ws[j] > 0.0f) chosen = s.cand[j];
  return chosen;
}

// The top-p cut: the y of the first candidate, in (y desc, id asc) order, at
// which base + the prefix mass reaches want (the last when rounding leaves it
// short), among the nb candidates whose keys (desc_key(y, position)) are in
// s.band; `base` is the mass of the candidates above them all. A weighted
// quickselect finds it.
float cut_in_band(size_t nb, double base, double want, SamplingScratch& s) {
  const size_t at = weighted_select(s.band.data(), nb, base, want, s.cand_w.data(), 1.0);
  return s.cand_y[static_cast<size_t>(key_id(s.band[at]))];
}

// Draws among the collected candidates: when `cut`, only the first ones in
// (y desc, id asc) order whose mass reaches want, extended to the tokens tied
// with the last of them; the draw walks the kept ones in id order.
int32_t draw_candidates(bool cut, double want, double u, SamplingScratch& s, const ModelKernels& k) {
  const size_t n = s.cand_y.size();
  if (n == 0) return -1;
  float y_cut = -INFINITY;
  if (cut) {
    s.band.resize(n);
    for (size_t j = 0; j < n; ++j) s.band[j] = desc_key(s.cand_y[j], static_cast<int32_t>(j));
    y_cut = cut_in_band(n, 0.0, want, s);
  }
  return draw_kept(y_cut, u, s, k);
}

// Mass per sixteenth of a nat below m of the candidates, into mass[kCutBins] (the
// last bin holds everything lower).
constexpr int32_t kCutBinsPerNat = 16;
constexpr int32_t kCutBins = 16 * kCutBinsPerNat;
inline int32_t cut_bin(float m, float y) {
  return static_cast<int32_t>(std::min((m - y) * static_cast<float>(kCutBinsPerNat), static_cast<float>(kCutBins - 1)));
}
// bins[j] = cut_bin(m, ys[j]) for j < n: a loop the compiler vectorizes, apart from
// the histogram that reads the bins.
void cut_bins(float m, const float* ys, size_t n, int32_t* bins) {
  for (size_t j = 0; j < n; ++j) bins[j] = cut_bin(m, ys[j]);
}
void bin_masses(float m, SamplingScratch& s, double* mass) {
  const std::vector<float>& ws = s.cand_w;
  const size_t n = s.cand_y.size();
  s.bins.resize(n);
  cut_bins(m, s.cand_y.data(), n, s.bins.data());
  const int32_t* bins = s.bins.data();
  double hist[4][kCutBins] = {};  // four copies (candidate j adds to copy j mod 4): consecutive tokens rarely wait on the same sum
  size_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (size_t q = 0; q < 4; ++q) hist[q][bins[j + q]] += static_cast<double>(ws[j + q]);
  for (; j < n; ++j) hist[j & 3][bins[j]] += static_cast<double>(ws[j]);
  for (int32_t i = 0; i < kCutBins; ++i) mass[i] = hist[0][i] + hist[1][i] + hist[2][i] + hist[3][i];
}
// The first bin at which the cumulative mass reaches want (kCutBins when none does).
int32_t bin_reaching(const double* mass, double want) {
  double cum = 0.0;
  int32_t b = 0;
  for (; b < kCutBins && cum + mass[b] < want; ++b) cum += mass[b];
  return b;
}

// The top-p cut of many candidates (s.cand, cand_y, cand_w; mass >= want),
// without ordering them all: their mass per sixteenth of a nat below m locates
// the sixteenth b where the prefix reaches `want`. The candidates are narrowed
// to those above the sixteenth b + 1 (a vector filter, id order kept), and the
// cut is searched among the sixteenths b - 1 .. b + 1, above the mass of the
// sixteenths higher up (the margin absorbs the rounding of either sum). Returns
// NaN when the candidates are too few to be worth it.
float narrow_and_cut(float m, double want, SamplingScratch& s, const ModelKernels& k) {
  const size_t n = s.cand_y.size();
  if (n < 512) return NAN;
  double mass[kCutBins];
  bin_masses(m, s, mass);
  const int32_t b = bin_reaching(mass, want);
  if (b + 2 >= kCutBins) return NAN;
  const int32_t lo = std::max<int32_t>(b - 1, 0), hi = b + 1;  // the band's bins
  double base = 0.0;  // the mass above the band
  for (int32_t i = 0; i < lo; ++i) base += mass[i];
  // Narrowed: y above the band's lower edge (in place), their weights again.
  std::vector<float>& ys = s.cand_y;
  const float y_lo = m - static_cast<float>(hi + 1) / static_cast<float>(kCutBinsPerNat);
  const size_t c = k.filter_greater(s.cand.data(), ys.data(), n, y_lo, s.cand.data(), ys.data());
  ys.resize(c);
  s.cand_w.resize(c);
  s.sums.resize(c / kSampleBlock + 2);
  k.exp_blocks(ys.data(), c, 1.0f, m, -INFINITY, s.cand_w.data(), s.sums.data());
  if (s.band.size() < c) s.band.resize(c);
  s.bins.resize(c);
  cut_bins(m, ys.data(), c, s.bins.data());
  size_t nb = 0;
  for (size_t j = 0; j < c; ++j) {  // branch free: every key written, the band's advance
    const int32_t bj = s.bins[j];
    s.band[nb] = desc_key(ys[j], static_cast<int32_t>(j));
    nb += bj >= lo && bj <= hi ? 1 : 0;
  }
  if (nb == 0) return NAN;
  return cut_in_band(nb, base, want, s);
}

// The top-p draw among the collected candidates, whose weights are in the
// frame of m: the cut (narrow_and_cut's when they are many), then the draw.
int32_t cut_and_draw(float m, double want, double u, SamplingScratch& s, const ModelKernels& k) {
  const float y_cut = narrow_and_cut(m, want, s, k);
  return std::isnan(y_cut) ? draw_candidates(true, want, u, s, k) : draw_kept(y_cut, u, s, k);
}

// Top-p from the lm head's records (record_nucleus): every tile recorded the
// tokens above its floor, so together they hold every token above the highest
// floor; when those hold the nucleus' mass, its cut and draw are exact from
// them alone (the cut depends only on the tokens at and above it). Returns -1
// when they do not (the caller scans the row), and then sets *short_of to the
// floor they hold every token above, when they hold less than the nucleus.
// `total`: the row's whole weight in the frame of m; the changes in scratch
// applied when `changed`.
int32_t nucleus_from_records(float inv, float m, double total, double top_p, double u, bool changed,
                             const RowStats& st, SamplingScratch& s, const ModelKernels& k, float* short_of) {
  *short_of = NAN;
  if (st.nucleus == nullptr) return -1;
  float floor = st.max * inv - kNucleusSpan;
  size_t recorded = 0;
  for (size_t t = 0; t < st.count; ++t) {
    const TileSummary& ts = st.tiles[t];
    if (!(ts.nucleus_floor < INFINITY)) return -1;  // not recorded (the pool was full)
    floor = std::max(floor, ts.nucleus_floor);
    recorded += static_cast<size_t>(ts.nucleus_count);
  }
  if (s.cand.size() < recorded + 16) s.cand.resize(recorded + 16);
  s.cand_y.resize(recorded + 16);
  size_t n = 0;
  for (size_t t = 0; t < st.count; ++t) {  // tile by tile: ids ascending
    const size_t at = st.tiles[t].nucleus_at;
    n += k.filter_greater(st.nucleus->ids + at, st.nucleus->y + at, static_cast<size_t>(st.tiles[t].nucleus_count),
                          floor, s.cand.data() + n, s.cand_y.data() + n);
  }
  const double want = top_p * total;
  if (finish_candidates(n, inv, m, floor, changed, s, k) < want) {
    *short_of = floor;
    return -1;
  }
  ++s.nucleus_from_records;
  return cut_and_draw(m, want, u, s, k);
}

// Top-p when the nucleus reaches below y0 (the floor of records that hold
// less than its mass): threshold scans of the row 1, 4, 16, 64 nats below y0,
// then all of it, until the tokens above hold the nucleus' mass.
int32_t nucleus_below(const float* x, size_t V, float inv, float m, float y0, double total, double top_p,
                      double u, bool changed, SamplingScratch& s, const ModelKernels& k) {
  const double want = top_p * total;
  for (float d = 1.0f;; d *= 4.0f) {
    const float y_lo = d > 64.0f ? -INFINITY : y0 - d;
    const double mass = collect_candidates(x, V, inv, m, y_lo, changed, s, k);
    if (mass >= want || y_lo == -INFINITY) return cut_and_draw(m, want, u, s, k);
  }
}

// Top-p for a row whose total weight is known, from the row itself (when the
// lm head's records do not hold the nucleus, or there are none): y = x * inv,
// the survivors those with y > floor_above (min-p; else -inf), weights
// exp(y - m) with m >= every y, `total` their sum, the changes (in scratch,
// may be empty) applied on top of the raw logits x. A strided sample of the row estimates
// the y above which the nucleus' mass lies; one threshold scan collects every
// token above a margin below it, and their exact weights decide the cut. When
// the candidates hold less than the nucleus the margin widens (down to every
// survivor). Cost: one compare pass over the row plus work on a few thousand tokens.
int32_t nucleus_draw(const float* x, size_t V, float inv, float m, float floor_above, double total,
                     double top_p, double u, bool changed, SamplingScratch& s, const ModelKernels& k) {
  const double want = top_p * total;
  const size_t stride = std::max<size_t>(1, V / 1024);
  std::vector<float> ys, ws;  // the sample's y and weights (a few thousand)
  for (size_t i = 0; i < V; i += stride) ys.push_back(x[i] * inv);
  const size_t ns = ys.size();
  ws.resize(ns);
  s.sums.resize(ns / kSampleBlock + 2);
  k.exp_blocks(ys.data(), ns, 1.0f, m, -INFINITY, ws.data(), s.sums.data());
  std::vector<uint64_t>& sample = s.keys;
  sample.resize(ns);
  for (size_t j = 0; j < ns; ++j) sample[j] = desc_key(ys[j], static_cast<int32_t>(j));
  // The sample misses most of the few top tokens that can hold most of the
  // mass: what its estimate of the total lacks is counted above all of it.
  double sampled = 0.0;
  for (size_t j = 0; j < ns; ++j) sampled += static_cast<double>(ws[j]) * static_cast<double>(stride);
  const double missing = std::max(0.0, total - sampled);
  const size_t est = weighted_select(sample.data(), ns, missing, want, ws.data(), static_cast<double>(stride));
  // weighted_select left sample[0, est) preferred to sample[est] and the rest after it.
  size_t margin = 8 + 3 * static_cast<size_t>(std::sqrt(static_cast<double>(est + 1)));
  for (;;) {
    float y_lo = floor_above;
    if (est + margin < ns) {
      std::nth_element(sample.begin() + static_cast<ptrdiff_t>(est + 1), sample.begin() + static_cast<ptrdiff_t>(est + margin), sample.end());
      y_lo = std::max(y_lo, ys[static_cast<size_t>(key_id(sample[est + margin]))]);
    }
    const double mass = collect_candidates(x, V, inv, m, y_lo, changed, s, k);
    if (mass < want && y_lo != floor_above) {  // the cut lies below the margin
      margin *= 4;
      continue;
    }
    return cut_and_draw(m, want, u, s, k);
  }
}

// Plain or top-p sampling from the lm head's tile weights when the row has
// changed logits or none: the tiles' masses in the frame of m (the largest
// scaled logit, penalized or not), each corrected for its changed logits
// (their raw weights out, their penalized weights in). Returns -1 when the
// changes remove more than half the mass (the correction would cancel too
// much: the caller takes the dense path).
int32_t draw_from_tiles(const float* x, size_t V, float inv, const RowStats& st,
                        const SamplingParams& p, bool changed, double u, SamplingScratch& s,
                        const ModelKernels& k) {
  float top = st.max;
  const size_t nc = changed ? s.changed_ids.size() : 0;
  for (size_t j = 0; j < nc; ++j) top = std::max(top, s.changed_value[j]);
  const float m = top * inv;  // rounding is monotonic: the largest y
  std::vector<double>& mass = s.tile_mass;
  mass.assign(st.count, 0.0);
  double raw_total = 0.0;
  for (size_t t = 0; t < st.count; ++t) {
    const TileSummary& ts = st.tiles[t];
    if (ts.max == -INFINITY) continue;
    mass[t] = (inv == 1.0f ? ts.sum : ts.wsum) * std::exp(static_cast<double>(ts.max * inv) - m);
    raw_total += mass[t];
  }
  double total = raw_total;
  if (nc > 0) {
    std::vector<float>& y = s.cand_y;  // [raw y of each change, penalized y of each change]
    std::vector<float>& w = s.cand_w;
    y.resize(2 * nc);
    w.resize(2 * nc);
    for (size_t j = 0; j < nc; ++j) {
      y[j] = s.changed_raw[j] * inv;
      y[nc + j] = s.changed_value[j] * inv;
    }
    s.sums.resize(2 * nc / kSampleBlock + 2);
    k.exp_blocks(y.data(), 2 * nc, 1.0f, m, -INFINITY, w.data(), s.sums.data());
    for (size_t j = 0; j < nc; ++j) {
      const double d = static_cast<double>(w[nc + j]) - static_cast<double>(w[j]);
      mass[static_cast<size_t>(s.changed_ids[j]) / kVocabTile] += d;
      total += d;
    }
    if (!(total >= 0.5 * raw_total)) return -1;
    for (double& mt : mass) mt = std::max(mt, 0.0);
  }
  if (p.top_p < 1.0f) {
    float short_of;
    const int32_t chosen = nucleus_from_records(inv, m, total, p.top_p, u, nc > 0, st, s, k, &short_of);
    if (chosen >= 0) return chosen;
    if (!std::isnan(short_of)) return nucleus_below(x, V, inv, m, short_of, total, p.top_p, u, nc > 0, s, k);
    return nucleus_draw(x, V, inv, m, -INFINITY, total, p.top_p, u, nc > 0, s, k);
  }
  const double target = u * total;
  double cum = 0.0;
  size_t t = 0;
  for (; t + 1 < st.count && cum + mass[t] <= target; ++t) cum += mass[t];
  // The chosen tile's weights, from its (penalized) logits.
  const size_t i0 = t * kVocabTile, n = std::min(kVocabTile, V - i0);
  const float* tile = x + i0;
  if (nc > 0) {
    s.work.assign(x + i0, x + i0 + n);
    const auto first = std::lower_bound(s.changed_ids.begin(), s.changed_ids.end(), static_cast<int32_t>(i0));
    for (auto it = first; it != s.changed_ids.end() && static_cast<size_t>(*it) < i0 + n; ++it)
      s.work[static_cast<size_t>(*it) - i0] = s.changed_value[static_cast<size_t>(it - s.changed_ids.begin())];
    tile = s.work.data();
  }
  s.e.resize(kVocabTile);
  double unused[(kVocabTile + kSampleBlock - 1) / kSampleBlock];
  k.exp_blocks(tile, n, inv, m, -INFINITY, s.e.data(), unused);
  int32_t chosen = -1;
  for (size_t i = 0; i < n; ++i) {
    if (!(s.e[i] > 0.0f)) continue;
    cum += s.e[i];
    chosen = static_cast<int32_t>(i0 + i);  // the last member so far (rounding can leave the target unmet)
    if (cum > target) break;
  }
  return chosen;
}

}  // namespace

void sample_row(const float* logits, size_t V, double lse, const RowStats* stats,
                const SamplingParams& p, SamplingScratch& s, const ModelKernels& k, int32_t* token,
                float* token_logprob, int32_t* top_ids, float* top_lps) {
  if (p.num_logprobs > 0) {
    const size_t n = std::min(static_cast<size_t>(p.num_logprobs), V);
    if (stats != nullptr && stats->cand != nullptr && n <= kFusedLogprobs) {  // from the tiles' candidates
      from_candidates(*stats, true, n, s, s.index);
      for (size_t i = 0; i < n; ++i) {
        top_ids[i] = i < s.index.size() ? s.index[i] : -1;
        top_lps[i] = i < s.index.size() ? static_cast<float>(static_cast<double>(logits[s.index[i]]) - lse) : NAN;
      }
    } else {
      top_logprobs(logits, V, lse, n, s, k, top_ids, top_lps);
    }
  }

  const bool penalized = has_penalties(p);
  if (penalized) collect_changes(logits, V, p, s);
  const bool greedy = !(p.temperature >= 1e-5f);  // (also for NaN temperature, rejected upstream)
  const float inv = greedy ? 1.0f : 1.0f / p.temperature;
  const double u = greedy ? 0.0 : counter_uniform(p.seed, p.output_index);
  const bool top_k = !greedy && p.top_k > 0 && static_cast<size_t>(p.top_k) < V;

  // Min-p without penalties: the row's max is known from the tiles, so one
  // threshold scan collects the survivors (y >= max + log(min_p)) and their
  // weights decide the draw (and the top-p cut among them).
  if (!greedy && !top_k && p.min_p > 0.0f && !penalized && stats != nullptr && stats->tiles != nullptr) {
    const float mx = stats->max * inv;
    const float floor = static_cast<float>(mx + std::log(static_cast<double>(p.min_p)));
    const double mass = collect_candidates(logits, V, inv, mx, std::nextafter(floor, -INFINITY), false, s, k);
    const double want = static_cast<double>(p.top_p) * mass;
    const int32_t chosen = p.top_p < 1.0f ? cut_and_draw(mx, want, u, s, k) : draw_candidates(false, want, u, s, k);
    if (chosen >= 0) {
      *token = chosen;
      *token_logprob = static_cast<float>(static_cast<double>(logits[chosen]) - lse);
      return;
    }
  }
  // Plain and top-p sampling without min-p: from the tiles' weights when the lm
  // head recorded them, corrected for the changed logits; else top-p from one
  // pass of weights when nothing changed.
  if (!greedy && !top_k && p.min_p <= 0.0f) {
    const bool tiles = stats != nullptr && stats->tiles != nullptr && stats->count > 0 &&
                       (inv == 1.0f || stats->tiles[0].weighted);
    int32_t chosen = -1;
    if (tiles) {
      chosen = draw_from_tiles(logits, V, inv, *stats, p, penalized, u, s, k);
    } else if (!penalized && p.top_p < 1.0f) {
      float xmax;
      size_t imax;
      k.argmax(logits, V, &xmax, &imax);
      const float m = xmax * inv;
      s.sums.resize((V + kSampleBlock - 1) / kSampleBlock);
      k.exp_blocks(logits, V, inv, m, -INFINITY, nullptr, s.sums.data());
      double total = 0.0;
      for (double b : s.sums) total += b;
      chosen = nucleus_draw(logits, V, inv, m, -INFINITY, total, p.top_p, u, false, s, k);
    }
    if (chosen >= 0) {
      *token = chosen;
      *token_logprob = static_cast<float>(static_cast<double>(logits[chosen]) - lse);
      return;
    }
  }

  // The dense path: penalties and bias applied to a copy of the row.
  const float* x = penalized ? penalized_row(logits, V, s) : logits;
  float xmax = -INFINITY;
  size_t imax = 0;
  const bool summarized = stats != nullptr && stats->tiles != nullptr && !penalized;
  if (greedy && summarized && stats->count > 0 && stats->tiles[0].arg >= 0) {
    size_t best = 0;  // the first tile holding the row's max: its argmax is the lowest id
    for (size_t t = 1; t < stats->count; ++t)
      if (stats->tiles[t].max > stats->tiles[best].max) best = t;
    imax = static_cast<size_t>(stats->tiles[best].arg);
    xmax = x[imax];
  } else if (greedy && !penalized && p.num_logprobs > 0 && top_ids[0] >= 0) {
    imax = static_cast<size_t>(top_ids[0]);  // the top-n list starts with the argmax (lowest id on ties)
    xmax = x[imax];
  } else if (greedy || penalized || stats == nullptr) {
    k.argmax(x, V, &xmax, &imax);
  } else {
    xmax = stats->max;
  }
  int32_t chosen = static_cast<int32_t>(imax);
  if (!greedy) {
    const float mx = xmax * inv;  // the largest y: rounding is monotonic
    // min-p: p_i >= min_p * p_max  <=>  y_i >= mx + log(min_p).
    const float floor = p.min_p > 0.0f ? static_cast<float>(mx + std::log(static_cast<double>(p.min_p))) : -INFINITY;
    const float above = std::nextafter(floor, -INFINITY);  // y > above  <=>  y >= floor
    if (top_k) {
      // Top-k survivors, sorted; fp64 weights; then top-p within them. From the
      // tiles' candidates when the lm head recorded them (the k best are among them).
      if (summarized && stats->cand != nullptr && static_cast<size_t>(p.top_k) <= kFusedTopK && p.min_p <= 0.0f) {
        from_candidates(*stats, false, static_cast<size_t>(p.top_k), s, s.index);
      } else {
        select_top(x, V, inv, above, static_cast<size_t>(p.top_k), k, s.index);
      }
      const size_t count = s.index.size();
      s.prob.resize(count);
      double total = 0.0;
      for (size_t i = 0; i < count; ++i) total += (s.prob[i] = std::exp(static_cast<double>(x[s.index[i]] * inv) - mx));
      size_t keep = count;
      if (p.top_p < 1.0f) {
        const double want = static_cast<double>(p.top_p) * total;
        double cum = 0.0;
        for (size_t i = 0; i < count; ++i) {
          cum += s.prob[i];
          if (cum >= want) {
            keep = i + 1;
            while (keep < count && x[s.index[keep]] * inv == x[s.index[keep - 1]] * inv) cum += s.prob[keep++];  // ties
            total = cum;
            break;
          }
        }
      }
      chosen = s.index[draw(s.prob.data(), keep, total, u)];
    } else {
      // Every survivor's weight in one pass, with block sums.
      const size_t blocks = (V + kSampleBlock - 1) / kSampleBlock;
      s.sums.resize(blocks);
      k.exp_blocks(x, V, inv, mx, floor, nullptr, s.sums.data());
      double total = 0.0;
      for (size_t b = 0; b < blocks; ++b) total += s.sums[b];
      if (p.top_p < 1.0f) {
        chosen = nucleus_draw(x, V, inv, mx, above, total, static_cast<double>(p.top_p), u, false, s, k);
      } else {
        chosen = draw_id_order(x, V, inv, floor, nullptr, u, true, s, k, mx);
      }
      if (chosen < 0) chosen = static_cast<int32_t>(imax);  // unreachable: the max has weight 1
    }
  }
  *token = chosen;
  *token_logprob = static_cast<float>(static_cast<double>(logits[chosen]) - lse);
}

}  // namespace troupe
