#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>

#include "model_kernels.h"

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

// Tokens of the nucleus (y >= y_cut) drawn in id order: block sums of their
// weights (given, or summed here), then the block where the cumulative mass
// passes u * total, walked token by token.
int32_t draw_id_order(const float* x, size_t V, float inv, float y_cut, const float* e, double u,
                      bool sums_ready, SamplingScratch& s, const ModelKernels& k, float m = 0.0f) {
  const size_t blocks = (V + kSampleBlock - 1) / kSampleBlock;
  if (!sums_ready) k.masked_sums(x, V, inv, y_cut, e, s.sums.data());
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) total += s.sums[b];
  const double target = u * total;
  double cum = 0.0;
  size_t b = 0;
  for (; b + 1 < blocks && cum + s.sums[b] <= target; ++b) cum += s.sums[b];
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

// Top-p over all survivors whose weights e (and their total) are known.
// A sample of every stride-th survivor gives a starting threshold for
// selecting the best 256 (sorted; when the prefix ends inside them, done).
// When the prefix is longer, the sample (the best 256's exact mass first,
// then each sampled weight standing for `stride` tokens) estimates where the
// sorted cumulative mass passes top_p * total; one pass sums the weights above
// a bracket around that estimate and collects the tokens inside it, and a
// weighted selection among those finds the exact cut. A bracket that misses widens.
int32_t top_p_all(const float* x, size_t V, float inv, float floor_above, const float* e,
                  double total, double top_p, double u, SamplingScratch& s, const ModelKernels& k) {
  const double want = top_p * total;
  constexpr size_t kBest = 256;
  const size_t stride = std::max<size_t>(1, V / 4096);
  std::vector<uint64_t>& sample = s.keys;
  sample.clear();
  for (size_t i = 0; i < V; i += stride)
    if (e[i] > 0.0f) sample.push_back(desc_key(x[i] * inv, static_cast<int32_t>(i)));
  const size_t ns = sample.size();
  // Threshold: the sampled token ranked about 3x the expected count of the best 256.
  const size_t r0 = 3 * ((kBest + stride - 1) / stride) + 4;
  float t = floor_above;
  if (r0 + 1 < ns) {
    std::nth_element(sample.begin(), sample.begin() + static_cast<ptrdiff_t>(r0), sample.end());
    t = std::max(floor_above, std::nextafter(x[key_id(sample[r0])] * inv, -INFINITY));
  }
  select_top(x, V, inv, t, kBest, k, s.index);
  if (s.index.size() < kBest && t != floor_above) select_top(x, V, inv, floor_above, kBest, k, s.index);
  double top_mass = 0.0;  // of the best 256, in sorted order
  {
    size_t keep = 0;
    for (size_t i = 0; i < s.index.size() && keep == 0; ++i) {
      top_mass += e[s.index[i]];
      if (top_mass >= want) keep = i + 1;
    }
    if (keep == 0 && s.index.size() < kBest) keep = s.index.size();  // rounding: every survivor
    if (keep > 0) {
      while (keep < s.index.size() && x[s.index[keep]] * inv == x[s.index[keep - 1]] * inv) ++keep;  // ties
      s.prob.resize(keep);
      double kept = 0.0;
      for (size_t i = 0; i < keep; ++i) kept += (s.prob[i] = e[s.index[i]]);
      return s.index[draw(s.prob.data(), keep, kept, u)];
    }
  }
  // The sampled tokens below the best 256; the rank where the estimate passes want.
  const int32_t last = s.index.back();
  const float y256 = x[last] * inv, t256 = e[last];
  const uint64_t key256 = desc_key(y256, last);
  const size_t first = static_cast<size_t>(std::partition(sample.begin(), sample.end(), [key256](uint64_t q) { return q <= key256; }) - sample.begin());
  const size_t j = first + weighted_select(sample.data() + first, ns - first, top_mass, want, e, static_cast<double>(stride));
  // weighted_select left sample[first..j] as the preferred side of j (unsorted) and j in place.
  size_t margin = 8 + 3 * static_cast<size_t>(std::sqrt(static_cast<double>(j - first + 1)));
  for (;;) {
    // Bracket [lo, hi) of weights: the sampled weights `margin` ranks either side of the estimate.
    float hi = t256, lo = 0.0f;
    if (j >= first + margin) {
      std::nth_element(sample.begin() + static_cast<ptrdiff_t>(first), sample.begin() + static_cast<ptrdiff_t>(j - margin), sample.end());
      hi = e[key_id(sample[j - margin])];
    }
    if (j + margin < ns) {
      std::nth_element(sample.begin() + static_cast<ptrdiff_t>(first), sample.begin() + static_cast<ptrdiff_t>(j + margin), sample.end());
      lo = e[key_id(sample[j + margin])];
    }
    double above = 0.0;  // the mass of weights >= hi
    k.masked_sums(e, V, 1.0f, hi, e, s.sums.data());
    for (size_t b = 0; b < (V + kSampleBlock - 1) / kSampleBlock; ++b) above += s.sums[b];
    if (above >= want) {
      if (hi == t256)  // the best 256 and the tokens tied with the last of them
        return draw_id_order(x, V, inv, y256, e, u, false, s, k);
      margin *= 4;  // the cut is above the bracket
      continue;
    }
    s.index.resize(V);
    const size_t n = k.scan_range(e, V, lo == 0.0f ? std::nextafter(0.0f, 1.0f) : lo, hi, s.index.data());
    double band = 0.0;
    for (size_t i = 0; i < n; ++i) band += static_cast<double>(e[s.index[i]]);
    if (above + band < want && lo > 0.0f) {  // the cut is below the bracket
      margin *= 4;
      continue;
    }
    if (above + band < want || n == 0)  // rounding: every survivor
      return draw_id_order(x, V, inv, std::nextafter(floor_above, INFINITY), e, u, false, s, k);
    std::vector<uint64_t>& band_keys = s.band;
    band_keys.resize(n);
    for (size_t i = 0; i < n; ++i) band_keys[i] = desc_key(x[s.index[i]] * inv, s.index[i]);
    const size_t cut = weighted_select(band_keys.data(), n, above, want, e, 1.0);
    return draw_id_order(x, V, inv, x[key_id(band_keys[cut])] * inv, e, u, false, s, k);
  }
}

}  // namespace

namespace {

// This tile's best `want` by (y desc, id asc) at or above the row's bound, into
// cand; raises the bound when the tile alone holds `want` of them.
int32_t tile_candidates(const float* l, size_t n, size_t v0, float inv, size_t want,
                        const ModelKernels& k, SamplingScratch& s, int32_t* cand,
                        std::atomic<float>* bound) {
  const float floor = bound->load(std::memory_order_relaxed);
  select_top(l, n, inv, std::nextafter(floor, -INFINITY), want, k, s.index, false);  // y >= floor, worst last
  for (size_t i = 0; i < s.index.size(); ++i) cand[i] = static_cast<int32_t>(v0 + s.index[i]);
  if (s.index.size() == want) {
    const float kv = l[s.index.back()] * inv;
    float cur = bound->load(std::memory_order_relaxed);
    while (kv > cur && !bound->compare_exchange_weak(cur, kv, std::memory_order_relaxed)) {
    }
  }
  return static_cast<int32_t>(s.index.size());
}

// The best `want` ids by (y desc, id asc) among the tiles' recorded candidates, sorted.
void from_candidates(const float* x, float inv, const RowStats& st, size_t offset, bool logprobs,
                     size_t want, SamplingScratch& s, std::vector<int32_t>& out) {
  s.keys.clear();
  for (size_t t = 0; t < st.count; ++t) {
    const int32_t n = logprobs ? st.tiles[t].lp_count : st.tiles[t].count;
    for (int32_t i = 0; i < n; ++i) {
      const int32_t id = st.cand[t * kCandStride + offset + static_cast<size_t>(i)];
      s.keys.push_back(desc_key(x[id] * inv, id));
    }
  }
  const size_t kk = std::min(s.keys.size(), want);
  std::nth_element(s.keys.begin(), s.keys.begin() + static_cast<ptrdiff_t>(kk), s.keys.end());
  std::sort(s.keys.begin(), s.keys.begin() + static_cast<ptrdiff_t>(kk));
  out.resize(kk);
  for (size_t i = 0; i < kk; ++i) out[i] = key_id(s.keys[i]);
}

}  // namespace

void summarize_tile(const float* l, size_t n, size_t v0, const SamplingParams& p,
                    const ModelKernels& k, SamplingScratch& s, TileSummary* t, int32_t* cand,
                    RowBounds* bounds) {
  t->arg = -1;
  t->count = 0;
  t->lp_count = 0;
  t->wsum = 0.0;
  if (n == 0) return;
  if (p.num_logprobs > 0 && static_cast<size_t>(p.num_logprobs) <= kFusedLogprobs)  // raw logits
    t->lp_count = tile_candidates(l, n, v0, 1.0f, static_cast<size_t>(p.num_logprobs), k, s,
                                  cand + kFusedTopK, &bounds->logprobs);
  if (has_penalties(p)) return;
  if (!(p.temperature >= 1e-5f)) {  // greedy
    float mx;
    size_t i;
    k.argmax(l, n, &mx, &i);
    t->arg = static_cast<int32_t>(v0 + i);
    return;
  }
  const float inv = 1.0f / p.temperature;
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) <= kFusedTopK) {
    t->count = tile_candidates(l, n, v0, inv, static_cast<size_t>(p.top_k), k, s, cand, &bounds->topk);
    return;
  }
  if (p.top_k <= 0 && p.top_p >= 1.0f && p.min_p <= 0.0f && inv != 1.0f) {
    double sums[(kVocabTile + kSampleBlock - 1) / kSampleBlock];
    k.exp_blocks(l, n, inv, t->max * inv, -INFINITY, nullptr, sums);
    double w = 0.0;
    for (size_t b = 0; b < (n + kSampleBlock - 1) / kSampleBlock; ++b) w += sums[b];
    t->wsum = w;
  }
}

void sample_row(const float* logits, size_t V, double lse, const RowStats* stats,
                const SamplingParams& p, SamplingScratch& s, const ModelKernels& k, int32_t* token,
                float* token_logprob, int32_t* top_ids, float* top_lps) {
  if (p.num_logprobs > 0) {
    const size_t n = std::min(static_cast<size_t>(p.num_logprobs), V);
    if (stats != nullptr && stats->cand != nullptr && n <= kFusedLogprobs) {  // from the tiles' candidates
      from_candidates(logits, 1.0f, *stats, kFusedTopK, true, n, s, s.index);
      for (size_t i = 0; i < n; ++i) {
        top_ids[i] = i < s.index.size() ? s.index[i] : -1;
        top_lps[i] = i < s.index.size() ? static_cast<float>(static_cast<double>(logits[s.index[i]]) - lse) : NAN;
      }
    } else {
      top_logprobs(logits, V, lse, n, s, k, top_ids, top_lps);
    }
  }

  // Penalties and bias change a few logits: applied to a copy, only when there are any.
  const float* x = logits;
  const bool penalized = has_penalties(p);
  if (penalized) {
    s.work.assign(logits, logits + V);
    apply_penalties(s.work.data(), V, p, s);
    x = s.work.data();
  }
  const bool greedy = !(p.temperature >= 1e-5f);  // (also for NaN temperature, rejected upstream)

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
    const float inv = 1.0f / p.temperature;
    const float mx = xmax * inv;  // the largest y: rounding is monotonic
    // min-p: p_i >= min_p * p_max  <=>  y_i >= mx + log(min_p).
    const float floor = p.min_p > 0.0f ? static_cast<float>(mx + std::log(static_cast<double>(p.min_p))) : -INFINITY;
    const float above = std::nextafter(floor, -INFINITY);  // y > above  <=>  y >= floor
    const double u = counter_uniform(p.seed, p.output_index);
    const bool top_k = p.top_k > 0 && static_cast<size_t>(p.top_k) < V;
    if (top_k) {
      // Top-k survivors, sorted; fp64 weights; then top-p within them. From the
      // tiles' candidates when the lm head recorded them (the k best are among them).
      if (summarized && stats->cand != nullptr && static_cast<size_t>(p.top_k) <= kFusedTopK && p.min_p <= 0.0f) {
        from_candidates(x, inv, *stats, 0, false, static_cast<size_t>(p.top_k), s, s.index);
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
    } else if (summarized && p.min_p <= 0.0f && p.top_p >= 1.0f && (inv == 1.0f || stats->tiles[0].wsum > 0.0)) {
      // Plain sampling: the tiles' weight sums (temperature 1: the log-sum-exp
      // state itself), scaled to the row's max; then the weights of one tile.
      auto tile_mass = [&](size_t t) {
        const TileSummary& ts = stats->tiles[t];
        if (ts.max == -INFINITY) return 0.0;
        return (inv == 1.0f ? ts.sum : ts.wsum) * std::exp(static_cast<double>(ts.max * inv) - mx);
      };
      double total = 0.0;
      for (size_t t = 0; t < stats->count; ++t) total += tile_mass(t);
      const double target = u * total;
      double cum = 0.0;
      size_t t = 0;
      for (; t + 1 < stats->count; ++t) {
        const double m = tile_mass(t);
        if (cum + m > target) break;
        cum += m;
      }
      const size_t i0 = t * kVocabTile, n = std::min(kVocabTile, V - i0);
      s.e.resize(kVocabTile);
      double unused[(kVocabTile + kSampleBlock - 1) / kSampleBlock];
      k.exp_blocks(x + i0, n, inv, mx, -INFINITY, s.e.data(), unused);
      chosen = -1;
      for (size_t i = 0; i < n; ++i) {
        if (!(s.e[i] > 0.0f)) continue;
        cum += s.e[i];
        chosen = static_cast<int32_t>(i0 + i);
        if (cum > target) break;
      }
      if (chosen < 0) chosen = static_cast<int32_t>(imax);
    } else {
      // Every survivor's weight in one pass, with block sums.
      const size_t blocks = (V + kSampleBlock - 1) / kSampleBlock;
      const bool keep_e = p.top_p < 1.0f;  // top-p revisits the weights; a plain draw, one block
      s.e.resize(keep_e ? V : kSampleBlock);
      s.sums.resize(blocks);
      k.exp_blocks(x, V, inv, mx, floor, keep_e ? s.e.data() : nullptr, s.sums.data());
      double total = 0.0;
      for (size_t b = 0; b < blocks; ++b) total += s.sums[b];
      if (keep_e) {
        chosen = top_p_all(x, V, inv, above, s.e.data(), total, static_cast<double>(p.top_p), u, s, k);
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
