#include "probes/kernel_binding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "kernels/bf16.h"
#include "probes/machine_limits.h"
#include "bindings/model_args.h"
#include "kernels/model_kernels.h"
#include "model/gemm_parallel.h"
#include "sampling/sampling.h"

namespace troupe {
namespace {

constexpr const char* kFn = "modelKernel";

float* f32(const PropReader& r, const char* name, size_t want) {
  size_t n;
  float* p = r.data<float>(name, napi_float32_array, "Float32Array", &n);
  if (n < want) r.fail_range(std::string(name) + " has " + std::to_string(n) + " elements, needs " + std::to_string(want));
  return p;
}

size_t dim(const PropReader& r, const char* name) {
  const double d = r.number(name);
  if (!(d >= 0) || std::floor(d) != d) r.fail_range(std::string(name) + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

KvLayout layout_arg(const PropReader& r) {
  PropReader lr{r.env, r.object("layout"), r.where + ".layout"};
  KvLayout L;
  L.num_blocks = dim(lr, "numBlocks");
  L.block_size = dim(lr, "blockSize");
  L.num_kv_heads = dim(lr, "kvHeads");
  L.head_dim = dim(lr, "headDim");
  L.bf16 = lr.boolean("bf16");
  // Optional FP8 cache: {fp8: 'e4m3' | 'e5m2', kScale?, vScale?} (the kv array is then a Uint8Array).
  if (lr.has("fp8")) {
    const std::string f = lr.string("fp8");
    if (f != "e4m3" && f != "e5m2") lr.fail_range("fp8 must be 'e4m3' or 'e5m2'");
    L.fp8 = f == "e4m3" ? KvFp8::E4m3 : KvFp8::E5m2;
    L.k_scale = static_cast<float>(lr.number_or("kScale", 1));
    L.v_scale = static_cast<float>(lr.number_or("vScale", 1));
  }
  if (L.block_size == 0 || L.block_size > kMaxBlockSize) lr.fail_range("blockSize out of range");
  return L;
}

void* kv_arg(const PropReader& r, const KvLayout& L) {
  size_t n;
  if (L.fp8 != KvFp8::None) {
    uint8_t* c = r.data<uint8_t>("kv", napi_uint8_array, "Uint8Array", &n);
    if (n != L.num_blocks * L.page_elems()) r.fail_range("kv has " + std::to_string(n) + " elements, layout needs " + std::to_string(L.num_blocks * L.page_elems()));
    return c;
  }
  void* p = L.bf16 ? static_cast<void*>(r.data<uint16_t>("kv", napi_uint16_array, "Uint16Array", &n))
                   : static_cast<void*>(r.data<float>("kv", napi_float32_array, "Float32Array", &n));
  if (n != L.num_blocks * L.page_elems()) r.fail_range("kv has " + std::to_string(n) + " elements, layout needs " + std::to_string(L.num_blocks * L.page_elems()));
  return p;
}

Napi::Value ModelKernel(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "modelKernel: name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const Isa isa = isa_arg(env, info[1], cpu, "modelKernel: isa");
  const ModelKernels* k = model_kernels(isa);
  if (k == nullptr) throw Napi::Error::New(env, std::string("modelKernel: this build has no '") + isa_name(isa) + "' kernels");
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "modelKernel: args must be an object");
  PropReader r{env, info[2].As<Napi::Object>(), std::string(kFn) + "('" + name + "')"};

  if (name == "gemm") {
    // {bf16, w, x: Float32Array [M,K], out [M,N], M, N, K, segments, n0?, n1?, packedX?}
    // packedX (bf16): x packed whole first, as linear_gemm.h does, where the path reads it
    // packed; returns whether it did.
    const bool bf16 = r.boolean("bf16");
    const size_t M = dim(r, "M"), N = dim(r, "N"), K = dim(r, "K"), segments = dim(r, "segments");
    const size_t n0 = r.has("n0") ? dim(r, "n0") : 0, n1 = r.has("n1") ? dim(r, "n1") : N;
    if (n0 > n1 || n1 > N) r.fail_range("need n0 <= n1 <= N");
    const float* x = f32(r, "x", M * K);
    float* out = f32(r, "out", M * N);
    size_t wn;
    if (bf16) {
      const uint16_t* w = r.data<uint16_t>("w", napi_uint16_array, "Uint16Array", &wn);
      if (wn != N * K) r.fail_range("w must have N*K elements");
      std::vector<uint16_t> xb(M * K);
      round_fp32_to_bf16(x, xb.data(), M * K);
      if (r.has("packedX") && r.boolean("packedX") && k->gemm_bf16_packed != nullptr && M >= k->packed_min_rows) {
        std::vector<uint32_t> packed;
        k->gemm_bf16_packed(w, gemm_pack_x_whole(*k, xb.data(), M, K, segments, packed), out, M, n0, n1, N, K, segments);
        return Napi::Boolean::New(env, true);
      }
      k->gemm_bf16(w, xb.data(), out, M, n0, n1, N, K, segments);
      return Napi::Boolean::New(env, false);
    } else {
      const float* w = r.data<float>("w", napi_float32_array, "Float32Array", &wn);
      if (wn != N * K) r.fail_range("w must have N*K elements");
      k->gemm_f32(w, x, out, M, n0, n1, N, K, segments);
    }
  } else if (name == "rmsNorm") {
    const size_t rows = dim(r, "rows"), H = dim(r, "H");
    k->rms_norm(f32(r, "x", rows * H), f32(r, "weight", H), f32(r, "out", rows * H), 0, rows, H,
                static_cast<float>(r.number("eps")));
  } else if (name == "rope") {
    const size_t rows = dim(r, "rows"), ld = dim(r, "ld"), heads = dim(r, "heads"), D = dim(r, "D");
    if (heads * D > ld || D % 2 != 0) r.fail_range("need heads*D <= ld and D even");
    k->rope(f32(r, "x", rows * ld), ld, heads, D, f32(r, "cosSin", rows * D), 0, rows);
  } else if (name == "siluMul") {
    const size_t rows = dim(r, "rows"), I = dim(r, "I");
    // {gateUp [rows, 2I], out [rows, I], rows, I, c0?, c1?, outBf16?: Uint16Array [rows, I]}
    const size_t c0 = r.has("c0") ? dim(r, "c0") : 0, c1 = r.has("c1") ? dim(r, "c1") : I;
    if (c0 > c1 || c1 > I) r.fail_range("need c0 <= c1 <= I");
    uint16_t* ob = nullptr;
    if (r.has("outBf16")) {
      size_t n;
      ob = r.data<uint16_t>("outBf16", napi_uint16_array, "Uint16Array", &n);
      if (n < rows * I) r.fail_range("outBf16 too short");
    }
    k->silu_mul(f32(r, "gateUp", rows * 2 * I), I, 0, rows, c0, c1, f32(r, "out", rows * I), ob);
  } else if (name == "roundBf16") {
    size_t n, no;
    const float* x = r.data<float>("x", napi_float32_array, "Float32Array", &n);
    uint16_t* o = r.data<uint16_t>("out", napi_uint16_array, "Uint16Array", &no);
    if (no < n) r.fail_range("out too short");
    k->round_bf16(x, o, n);
  } else if (name == "exp") {
    size_t n;
    const float* x = r.data<float>("x", napi_float32_array, "Float32Array", &n);
    k->exp_f32(x, f32(r, "out", n), n);
  } else if (name == "scanGreater") {
    // {x, s, t, out: Int32Array (its length is the cap), from?}: the count written
    size_t n, cap;
    const float* x = r.data<float>("x", napi_float32_array, "Float32Array", &n);
    int32_t* out = r.data<int32_t>("out", napi_int32_array, "Int32Array", &cap);
    size_t from = r.has("from") ? dim(r, "from") : 0;
    if (from > n) r.fail_range("from past the end");
    return Napi::Number::New(env, static_cast<double>(k->scan_greater(x, n, static_cast<float>(r.number("s")),
                                                                      static_cast<float>(r.number("t")), &from, out, cap)));
  } else if (name == "scanGreaterPairs" || name == "filterGreater") {
    // scanGreaterPairs {x, s, t, base, outIds, outY}; filterGreater {ids, y, t, outIds, outY}:
    // the count written (the outputs need room for n + 16)
    size_t n, ni, no, ny;
    const bool scan = name == "scanGreaterPairs";
    const float* x = r.data<float>(scan ? "x" : "y", napi_float32_array, "Float32Array", &n);
    int32_t* out_ids = r.data<int32_t>("outIds", napi_int32_array, "Int32Array", &no);
    float* out_y = r.data<float>("outY", napi_float32_array, "Float32Array", &ny);
    if (no < n + 16 || ny < n + 16) r.fail_range("outIds and outY need room for n + 16");
    const float t = static_cast<float>(r.number("t"));
    size_t c;
    if (scan) {
      c = k->scan_greater_pairs(x, n, static_cast<float>(r.number("s")), t, static_cast<int32_t>(r.number("base")), out_ids, out_y);
    } else {
      const int32_t* ids = r.data<int32_t>("ids", napi_int32_array, "Int32Array", &ni);
      if (ni != n) r.fail_range("ids and y differ in length");
      c = k->filter_greater(ids, x, n, t, out_ids, out_y);
    }
    return Napi::Number::New(env, static_cast<double>(c));
  } else if (name == "tileLse" || name == "maskedTileLse") {
    // tileLse {logits}; maskedTileLse {logits (masked in place), words: Uint32Array of
    // ceil(n / 32), masked}: {max, sum}
    size_t n, nw;
    float* x = r.data<float>("logits", napi_float32_array, "Float32Array", &n);
    float max;
    double sum;
    if (name == "tileLse") {
      k->tile_lse(x, n, &max, &sum);
    } else {
      const uint32_t* words = r.data<uint32_t>("words", napi_uint32_array, "Uint32Array", &nw);
      if (nw < (n + 31) / 32) r.fail_range("words needs ceil(n / 32) entries");
      k->masked_tile_lse(x, n, words, static_cast<float>(r.number("masked")), &max, &sum);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("max", Napi::Number::New(env, max));
    o.Set("sum", Napi::Number::New(env, sum));
    return o;
  } else if (name == "logSumExp") {
    size_t n;
    const float* x = r.data<float>("logits", napi_float32_array, "Float32Array", &n);
    return Napi::Number::New(env, row_logsumexp(x, n, k->tile_lse));
  } else if (name == "kvWrite") {
    // {k, v: [rows, ld], ld, slots: Int32Array [rows], kv, layout}
    const KvLayout L = layout_arg(r);
    const size_t ld = dim(r, "ld");
    const std::vector<int32_t> slots = r.int32s("slots");
    for (int32_t s : slots)
      if (s >= static_cast<int32_t>(L.num_blocks * L.block_size)) r.fail_range("slot out of range");
    if (L.num_kv_heads * L.head_dim > ld) r.fail_range("ld too small");
    k->kv_write(f32(r, "k", slots.size() * ld), f32(r, "v", slots.size() * ld), ld, slots.data(), 0,
                slots.size(), kv_arg(r, L), L);
  } else if (name == "attention") {
    // {q [T, ldQ], ldQ, out [T, ldOut], ldOut, kv, layout, queryLens, contextLens,
    //  blockTables [S, maxBlocks], maxBlocks, numHeads, scale}
    const KvLayout L = layout_arg(r);
    AttentionArgs a;
    a.layout = L;
    a.kv = kv_arg(r, L);
    a.ld_q = dim(r, "ldQ");
    a.ld_out = dim(r, "ldOut");
    a.num_heads = dim(r, "numHeads");
    a.max_blocks = dim(r, "maxBlocks");
    // With an FP8 cache the model folds k_scale into the score scale and v_scale into the output.
    a.scale = static_cast<float>(r.number("scale")) * (L.fp8 != KvFp8::None ? L.k_scale : 1.0f);
    a.v_scale = L.fp8 != KvFp8::None ? L.v_scale : 1.0f;
    const std::vector<int32_t> qlens = r.int32s("queryLens"), ctx = r.int32s("contextLens"),
                               tables = r.int32s("blockTables");
    const size_t S = qlens.size();
    if (ctx.size() != S || tables.size() != S * a.max_blocks) r.fail_range("per-sequence arrays disagree");
    if (a.num_heads == 0 || a.num_heads % L.num_kv_heads != 0 || a.num_heads * L.head_dim > a.ld_q ||
        a.num_heads * L.head_dim > a.ld_out || L.head_dim > 256)
      r.fail_range("bad head counts or strides");
    std::vector<int32_t> qstart(S + 1, 0);
    for (size_t s = 0; s < S; ++s) {
      if (qlens[s] < 0 || ctx[s] < qlens[s] || static_cast<size_t>((ctx[s] + L.block_size - 1) / L.block_size) > a.max_blocks)
        r.fail_range("sequence " + std::to_string(s) + ": bad query / context length");
      for (size_t b = 0; b < (ctx[s] + L.block_size - 1) / L.block_size; ++b)
        if (tables[s * a.max_blocks + b] < 0 || static_cast<size_t>(tables[s * a.max_blocks + b]) >= L.num_blocks)
          r.fail_range("block table entry out of range");
      qstart[s + 1] = qstart[s] + qlens[s];
    }
    const size_t T = static_cast<size_t>(qstart[S]);
    a.q = f32(r, "q", T * a.ld_q);
    a.out = f32(r, "out", T * a.ld_out);
    a.query_start = qstart.data();
    a.context_lens = ctx.data();
    a.block_tables = tables.data();
    // Tasks of uneven sizes on purpose: splitting must not change results.
    std::vector<AttentionTask> tasks;
    const size_t split = r.has("taskRows") ? dim(r, "taskRows") : 1u << 30;
    for (size_t s = 0; s < S; ++s)
      for (size_t g = 0; g < L.num_kv_heads; ++g)
        for (size_t q0 = 0; q0 < static_cast<size_t>(qlens[s]); q0 += split)
          tasks.push_back({static_cast<uint32_t>(s), static_cast<uint32_t>(g), static_cast<uint32_t>(q0),
                           static_cast<uint32_t>(std::min<size_t>(qlens[s], q0 + split))});
    k->attention(a, tasks.data(), 0, tasks.size());
  } else {
    throw Napi::RangeError::New(env, "modelKernel: unknown kernel '" + name + "'");
  }
  return env.Undefined();
}

Napi::Value SampleLogits(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  const ArrayView<float> logits = float32_array_arg(info, 0, "sampleLogits", "logits ([R,V] fp32)");
  const size_t V = dim_arg(info, 1, "sampleLogits", "V");
  if (V == 0 || logits.length % V != 0) throw Napi::RangeError::New(env, "sampleLogits: logits length must be a multiple of V");
  const size_t R = logits.length / V;
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "sampleLogits: sampling must be an object");
  const SamplingBatch b = read_sampling(PropReader{env, info[2].As<Napi::Object>(), "sampleLogits: sampling"}, R, V);
  const ModelKernels* k = model_kernels(best_isa(cpu));
  size_t top_n = 0;
  for (const SamplingParams& p : b.params) top_n = std::max<size_t>(top_n, p.num_logprobs > 0 ? p.num_logprobs : 0);
  top_n = std::min(top_n, V);
  Napi::Int32Array tokens = Napi::Int32Array::New(env, R);
  Napi::Float32Array lps = Napi::Float32Array::New(env, R);
  Napi::Int32Array top_ids = Napi::Int32Array::New(env, R * top_n);
  Napi::Float32Array top_lps = Napi::Float32Array::New(env, R * top_n);
  for (size_t i = 0; i < R * top_n; ++i) {
    top_ids[i] = -1;
    top_lps[i] = NAN;
  }
  SamplingScratch scratch;
  // The lm head's tile summaries, as the model records them; {summaries: false}
  // samples from the raw rows alone (tests compare the two).
  const bool summarize = !(info[3].IsObject() && info[3].As<Napi::Object>().Has("summaries") &&
                           !info[3].As<Napi::Object>().Get("summaries").ToBoolean().Value());
  const size_t tiles = (V + kVocabTile - 1) / kVocabTile;
  std::vector<TileSummary> summaries(tiles);
  std::vector<TileCandidates> cand(tiles);
  OwnedNucleusPool records(1, V);  // one row's top-p records at a time
  std::vector<float> masked;  // the row's logits, a grammar's mask applied to this copy (the input stays as it is)
  for (size_t i = 0; i < R; ++i) {
    masked.assign(logits.data + i * V, logits.data + (i + 1) * V);
    float* row = masked.data();
    RowBounds kth;
    records.pool.used.store(0);
    const double lse = summarize_row(row, V, b.params[i].mask, summarize ? &b.params[i] : nullptr, *k, scratch,
                                     summaries.data(), cand.data(), &kth, &records.pool);
    const RowStats stats = row_stats(summaries.data(), tiles, cand.data(), &records.pool);
    sample_row(row, V, lse, summarize ? &stats : nullptr, b.params[i], scratch, *k, tokens.Data() + i, lps.Data() + i,
               top_ids.Data() + i * top_n, top_lps.Data() + i * top_n);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("tokens", tokens);
  o.Set("logprobs", lps);
  o.Set("topN", Napi::Number::New(env, static_cast<double>(top_n)));
  o.Set("topIds", top_ids);
  o.Set("topLogprobs", top_lps);
  // Rows whose top-p nucleus came from the tile records, not a scan of the row.
  o.Set("nucleusFromRecords", Napi::Number::New(env, static_cast<double>(scratch.nucleus_from_records)));
  return o;
}

uint64_t seed_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return static_cast<uint64_t>(dim_arg(info, i, fn, name));
}

Napi::Value CounterUniform(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), counter_uniform(seed_arg(info, 0, "counterUniform", "seed"),
                                                       seed_arg(info, 1, "counterUniform", "index")));
}

Napi::Value MeasureReadBandwidth(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  const size_t bytes = dim_arg(info, 0, "measureReadBandwidth", "bytes");
  const size_t threads = dim_arg(info, 1, "measureReadBandwidth", "threads");
  const size_t passes = dim_arg(info, 2, "measureReadBandwidth", "passes");
  return Napi::Number::New(info.Env(), measure_read_bandwidth(bytes, threads, passes, cpu));
}

// measurePeak(isa | undefined, threads, seconds) -> {isa, flops, instruction, kind}
Napi::Value MeasurePeak(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  const Isa isa = isa_arg(info.Env(), info[0], cpu, "measurePeak: isa");
  const size_t threads = dim_arg(info, 1, "measurePeak", "threads");
  const double seconds = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0.5;
  const PeakResult p = measure_peak(isa, threads, seconds, cpu);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("isa", isa_name(isa));
  o.Set("flops", p.flops);
  o.Set("instruction", p.instruction);
  o.Set("kind", p.kind);
  return o;
}

}  // namespace

void register_kernel_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("modelKernel", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return ModelKernel(info, cpu); }, "modelKernel"));
  exports.Set("sampleLogits", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return SampleLogits(info, cpu); }, "sampleLogits"));
  exports.Set("counterUniform", Napi::Function::New(env, CounterUniform, "counterUniform"));
  exports.Set("measureReadBandwidth", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return MeasureReadBandwidth(info, cpu); }, "measureReadBandwidth"));
  exports.Set("measurePeak", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return MeasurePeak(info, cpu); }, "measurePeak"));
}

}  // namespace troupe
