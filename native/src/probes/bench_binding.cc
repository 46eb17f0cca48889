// Benchmark entry points (bench/gemm.bench.ts, bench/sampling.bench.ts): the
// model's own GEMM driver and sampling phase, timed natively on a thread pool
// of the requested size, so the figures are those of the forward step and
// not of a JS loop around a kernel.
//
//   gemmBench({isa?, threads, M, N, K, segments, copies, reps})
//     -> { seconds: number[] }   one entry per rep: a pass over `copies` weight
//        matrices (distinct memory, so a pass streams copies * N * K * 2 bytes
//        from DRAM as the decode step does), divided by `copies`
//   sampleBench(logits [R, V], V, sampling, {isa?, threads, reps})
//     -> { lseMs: number[], sampleMs: number[] }   per rep: the lm head's per-tile
//        epilogue for sampled rows (log-sum-exp state and tile summaries, parallel over
//        rows), then the sampling phase of the step (sampling.h, parallel over rows)
#include "probes/bench_binding.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "bindings/args.h"
#include "model/gemm_parallel.h"
#include "model/model.h"
#include "bindings/model_args.h"
#include "model/random_fill.h"
#include "sampling/sampling.h"
#include "platform/thread_pool.h"

namespace troupe {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

size_t dim(const PropReader& r, const char* name, size_t fallback) {
  if (!r.has(name)) return fallback;
  const double d = r.number(name);
  if (!(d >= 0) || std::floor(d) != d) r.fail_range(std::string(name) + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

Napi::Value GemmBench(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "gemmBench: args must be an object");
  PropReader r{env, info[0].As<Napi::Object>(), "gemmBench: args"};
  const Isa isa = isa_arg(env, r.obj.Get("isa"), cpu, "gemmBench: isa");
  const ModelKernels* k = model_kernels(isa);
  const size_t threads = std::max<size_t>(1, dim(r, "threads", 1)), M = dim(r, "M", 1), N = dim(r, "N", 0),
               K = dim(r, "K", 0), segments = std::max<size_t>(1, dim(r, "segments", 1)),
               copies = std::max<size_t>(1, dim(r, "copies", 1)), reps = std::max<size_t>(1, dim(r, "reps", 3));
  if (N == 0 || K == 0 || M == 0) r.fail_range("M, N and K must be positive");
  const size_t wbytes = N * K * 2;
  uint16_t* w = static_cast<uint16_t*>(alloc_anonymous(wbytes * copies));
  // Small random bf16 weights (the values do not matter for timing, denormals would).
  fill_uniform_bf16(w, N * K * copies, counter_uniform_key(1, 2), 0, 0.05f);
  std::vector<uint16_t> x(M * K);
  std::vector<float> xf(M * K);
  fill_uniform_f32(xf.data(), xf.size(), counter_uniform_key(1, 3), 0, 1.0f);
  k->round_bf16(xf.data(), x.data(), xf.size());
  std::vector<float> out(M * N);
  ThreadPool pool(threads);
  Napi::Array seconds = Napi::Array::New(env);
  for (size_t rep = 0; rep <= reps; ++rep) {  // rep 0 warms up (page faults, thread start)
    const double t0 = now_s();
    for (size_t c = 0; c < copies; ++c)
      gemm_parallel(pool, *k, true, w + c * N * K, x.data(), out.data(), M, N, K, N, segments, NoEpilogue{});
    const double dt = (now_s() - t0) / static_cast<double>(copies);
    if (rep > 0) seconds.Set(static_cast<uint32_t>(rep - 1), dt);
  }
  free_anonymous(w, wbytes * copies);
  Napi::Object o = Napi::Object::New(env);
  o.Set("seconds", seconds);
  return o;
}

Napi::Value SampleBench(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  const ArrayView<float> logits = float32_array_arg(info, 0, "sampleBench", "logits ([R,V] fp32)");
  const size_t V = dim_arg(info, 1, "sampleBench", "V");
  if (V == 0 || logits.length % V != 0) throw Napi::RangeError::New(env, "sampleBench: logits length must be a multiple of V");
  const size_t R = logits.length / V;
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "sampleBench: sampling must be an object");
  const SamplingBatch b = read_sampling(PropReader{env, info[2].As<Napi::Object>(), "sampleBench: sampling"}, R, V);
  if (!info[3].IsObject()) throw Napi::TypeError::New(env, "sampleBench: options must be an object");
  PropReader r{env, info[3].As<Napi::Object>(), "sampleBench: options"};
  const Isa isa = isa_arg(env, r.obj.Get("isa"), cpu, "sampleBench: isa");
  const ModelKernels* k = model_kernels(isa);
  const size_t threads = std::max<size_t>(1, dim(r, "threads", 1)), reps = std::max<size_t>(1, dim(r, "reps", 5));
  const size_t tiles = (V + kVocabTile - 1) / kVocabTile;
  std::vector<TileSummary> summaries(R * tiles);
  std::vector<TileCandidates> cand(R * tiles);
  std::vector<double> lse(R);
  size_t top_n = 0;
  for (const SamplingParams& p : b.params) top_n = std::max<size_t>(top_n, p.num_logprobs > 0 ? static_cast<size_t>(p.num_logprobs) : 0);
  std::vector<int32_t> tokens(R), top_ids(R * top_n);
  std::vector<float> lps(R), top_lps(R * top_n);
  std::unique_ptr<RowBounds[]> kth(new RowBounds[R > 0 ? R : 1]);
  ThreadPool pool(threads);
  size_t nucleus_rows = 0;  // top-p records, sized as the model sizes them
  for (const SamplingParams& p : b.params) nucleus_rows += records_nucleus(p) ? 1 : 0;
  OwnedNucleusPool records(nucleus_rows, V);
  std::atomic<size_t> from_records{0};  // rows of the last rep whose top-p nucleus came from the tile records
  Napi::Array lse_ms = Napi::Array::New(env), sample_ms = Napi::Array::New(env);
  // Grammar rows are masked in place, as the lm head does: each rep masks a fresh copy.
  std::vector<float> work;
  bool any_mask = false;
  for (const SamplingParams& p : b.params) any_mask = any_mask || p.mask != nullptr;
  if (any_mask) work.resize(R * V);
  auto row_of = [&](size_t i) { return b.params[i].mask != nullptr ? work.data() + i * V : logits.data + i * V; };
  for (size_t rep = 0; rep <= reps; ++rep) {
    for (size_t i = 0; i < R; ++i) kth[i].reset();
    for (size_t i = 0; i < R; ++i)
      if (b.params[i].mask != nullptr) std::memcpy(work.data() + i * V, logits.data + i * V, V * sizeof(float));
    records.pool.used.store(0);
    const double t0 = now_s();
    // The lm head's per-tile epilogue for sampled rows: log-sum-exp state and the
    // tile summary, one task per row (the model runs them inside its vocab-tile tasks).
    pool.parallel_for(R, [&](size_t i) {
      static thread_local SamplingScratch sc;
      lse[i] = summarize_row(row_of(i), V, b.params[i].mask, &b.params[i], *k, sc, &summaries[i * tiles],
                             &cand[i * tiles], &kth[i], &records.pool);
    });
    const double t1 = now_s();
    pool.parallel_for(R, [&](size_t i) {
      static thread_local SamplingScratch sc;
      const size_t recorded_before = sc.nucleus_from_records;
      const RowStats stats = row_stats(&summaries[i * tiles], tiles, &cand[i * tiles], &records.pool);
      sample_row(row_of(i), V, lse[i], &stats, b.params[i], sc, *k, &tokens[i], &lps[i],
                 top_ids.data() + i * top_n, top_lps.data() + i * top_n);
      if (rep == reps) from_records.fetch_add(sc.nucleus_from_records - recorded_before, std::memory_order_relaxed);
    });
    const double t2 = now_s();
    if (rep > 0) {
      lse_ms.Set(static_cast<uint32_t>(rep - 1), (t1 - t0) * 1e3);
      sample_ms.Set(static_cast<uint32_t>(rep - 1), (t2 - t1) * 1e3);
    }
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("lseMs", lse_ms);
  o.Set("sampleMs", sample_ms);
  Napi::Int32Array tk = Napi::Int32Array::New(env, R);
  std::memcpy(tk.Data(), tokens.data(), R * sizeof(int32_t));
  o.Set("tokens", tk);
  o.Set("nucleusFromRecords", Napi::Number::New(env, static_cast<double>(from_records.load())));
  return o;
}

}  // namespace

void register_bench_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("gemmBench", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return GemmBench(info, cpu); }, "gemmBench"));
  exports.Set("sampleBench", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return SampleBench(info, cpu); }, "sampleBench"));
}

}  // namespace troupe
