#include "bindings/model_binding.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "bindings/args.h"
#include "bindings/collectives_binding.h"
#include "bindings/fp8_binding.h"
#include "model/model.h"
#include "model/random_fill.h"
#include "bindings/model_args.h"
#include "bindings/model_handle.h"

namespace troupe {
namespace {

Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  const size_t bytes = dim_arg(info, 0, "allocAligned", "bytes");
  void* p = bytes == 0 ? nullptr : alloc_anonymous(bytes);
  if (p == nullptr) return Napi::ArrayBuffer::New(info.Env(), 0);
  return Napi::ArrayBuffer::New(info.Env(), p, bytes, [](Napi::Env, void* data, size_t* len) {
    free_anonymous(data, *len);
    delete len;
  }, new size_t(bytes));
}

// Maps a whole file read-only (MAP_PRIVATE) as an ArrayBuffer; unmapped when collected.
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "mapFile: path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size == 0) {
    close(fd);
    throw Napi::Error::New(env, "mapFile: cannot map " + path + " (empty or unreadable)");
  }
  const size_t bytes = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw Napi::Error::New(env, "mapFile: mmap of " + path + " failed: " + std::strerror(errno));
  return Napi::ArrayBuffer::New(env, p, bytes, [](Napi::Env, void* data, size_t* len) {
    munmap(data, *len);
    delete len;
  }, new size_t(bytes));
}

// A weight matrix / vector of the expected element count; bf16 (Uint16Array) or fp32.
const void* weight_arg(const PropReader& r, const char* name, bool bf16, size_t elems) {
  size_t n;
  const void* p = bf16 ? static_cast<const void*>(r.data<uint16_t>(name, napi_uint16_array, "Uint16Array (bf16 bits)", &n))
                       : static_cast<const void*>(r.data<float>(name, napi_float32_array, "Float32Array", &n));
  if (n != elems) r.fail_range(std::string(name) + " has " + std::to_string(n) + " elements, expected " + std::to_string(elems));
  return p;
}

// A linear's weight [N, K]: a plain matrix (weight_arg), or an FP8 one
// {fp8: Uint8Array [N*K] e4m3 codes, scale: Float32Array [N], inputScale?, activationUb?}.
// NaN codes are refused. When the FP8 kernel reads a prepacked layout the codes are
// reordered in place, once: the object is marked {packed: layout} (a second model on
// the same arrays reuses them; a different layout is refused). `segments`: the K
// segments the model sums this linear in. `row_split`: for o / down, the rank's
// shard; under tensor parallelism their codes are stored segment-major
// (model_parallel.h), each of the rank's segments a [N, k_j] matrix that its
// GEMM reads with one segment, so each is prepacked as such (the same chunk
// grid, from the segment's first column, as tp 1's prepack of that segment).
// `parts`: the array stacks that many matrices of N / parts rows that the model
// multiplies on their own (gate_up: gate, then up), each prepacked on its own.
Linear linear_arg(const PropReader& r, const char* name, bool bf16, size_t N, size_t K, size_t segments,
                  const Fp8Kernels* f8, const RankShard* row_split = nullptr, size_t parts = 1) {
  Linear lin;
  lin.rows = N;
  const Napi::Value v = r.obj.Get(name);
  if (!v.IsObject() || v.IsTypedArray()) {
    lin.w = weight_arg(r, name, bf16, N * K);
    lin.type = bf16 ? WeightType::Bf16 : WeightType::F32;
    return lin;
  }
  PropReader fr{r.env, v.As<Napi::Object>(), r.where + "." + name};
  if (!bf16) fr.fail_range("FP8 weights run in bfloat16 mode only (dtype is 'float32'); load the model with dtype bfloat16");
  size_t n;
  uint8_t* codes = fr.data<uint8_t>("fp8", napi_uint8_array, "Uint8Array (e4m3 codes)", &n);
  lin.w = codes;
  if (n != N * K) fr.fail_range("fp8 has " + std::to_string(n) + " elements, expected " + std::to_string(N * K));
  lin.type = WeightType::E4m3;
  lin.scale = fr.data<float>("scale", napi_float32_array, "Float32Array", &n);
  if (n != N) fr.fail_range("scale has " + std::to_string(n) + " entries, expected one per output channel (" + std::to_string(N) + ")");
  lin.input_scale = static_cast<float>(fr.number_or("inputScale", 0));
  lin.act_ub = static_cast<float>(fr.number_or("activationUb", INFINITY));
  if (!(lin.input_scale >= 0) || !std::isfinite(lin.input_scale)) fr.fail_range("inputScale must be a finite scale >= 0 (0: dynamic)");
  if (!(lin.act_ub > 0)) fr.fail_range("activationUb must be positive");
  const std::string packed = fr.has("packed") ? fr.string("packed") : "";
  if (packed.empty()) {
    for (size_t i = 0; i < N * K; ++i)
      if ((codes[i] & 0x7f) == 0x7f)
        fr.fail_range("fp8 holds a NaN code (0x" + std::string(codes[i] == 0xff ? "ff" : "7f") + ") at row " + std::to_string(i / K) +
                      ", column " + std::to_string(i % K) + ": FP8 weights must be finite");
    if (f8 != nullptr && f8->prepack != nullptr) {
      if (row_split != nullptr && row_split->parallel()) {
        for (size_t j = 0; j < row_split->local_segments(); ++j) {
          const SegmentRange sr = local_segment(*row_split, K, j);
          f8->prepack(codes + N * sr.begin, N, sr.end - sr.begin, 1);
        }
      } else {
        for (size_t p = 0; p < parts; ++p) f8->prepack(codes + N / parts * p * K, N / parts, K, segments);
      }
      fr.obj.Set("packed", f8->layout);
    }
  } else if (f8 == nullptr || f8->layout == nullptr || packed != f8->layout) {
    fr.fail_range("fp8 was reordered for the '" + packed + "' kernel layout, which this model's FP8 kernel (" +
                  (f8 != nullptr ? f8->name : "none") + ") does not read; load the weights again");
  }
  return lin;
}

const float* norm_arg(const PropReader& r, const char* name, size_t elems) {
  size_t n;
  const float* p = r.data<float>(name, napi_float32_array, "Float32Array", &n);
  if (n != elems) r.fail_range(std::string(name) + " has " + std::to_string(n) + " elements, expected " + std::to_string(elems));
  return p;
}

Napi::Value ModelCreate(const Napi::CallbackInfo& info, const CpuFeatures& cpu) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "modelCreate: desc must be an object");
  PropReader r{env, info[0].As<Napi::Object>(), "modelCreate: desc"};
  const Isa isa = isa_arg(env, r.obj.Get("isa"), cpu, "modelCreate: isa");
  const std::string dtype = r.string("dtype");
  if (dtype != "bfloat16" && dtype != "float32") r.fail_range("dtype must be 'bfloat16' or 'float32', got '" + dtype + "'");
  ModelShape s;
  s.bf16 = dtype == "bfloat16";
  s.hidden = static_cast<size_t>(r.number("hidden"));
  s.layers = static_cast<size_t>(r.number("layers"));
  s.heads = static_cast<size_t>(r.number("heads"));
  s.kv_heads = static_cast<size_t>(r.number("kvHeads"));
  s.head_dim = static_cast<size_t>(r.number("headDim"));
  s.intermediate = static_cast<size_t>(r.number("intermediate"));
  s.vocab = static_cast<size_t>(r.number("vocab"));
  s.rms_eps = static_cast<float>(r.number("rmsEps"));
  if (s.hidden == 0 || s.heads == 0 || s.kv_heads == 0 || s.head_dim == 0 || s.vocab == 0 || s.intermediate == 0)
    r.fail_range("every dimension must be positive");
  if (s.heads % s.kv_heads != 0) r.fail_range("heads must be a multiple of kvHeads");
  if (s.head_dim % 2 != 0 || s.head_dim > 256) r.fail_range("headDim must be even and at most 256");
  KvLayout kv;
  kv.bf16 = s.bf16;
  kv.block_size = static_cast<size_t>(r.number("blockSize"));
  kv.num_blocks = static_cast<size_t>(r.number("numBlocks"));
  kv.num_kv_heads = s.kv_heads;
  kv.head_dim = s.head_dim;
  // KV cache dtype: 'auto' (the mode's), or one byte per element in fp8_e4m3 / fp8_e5m2 with
  // per-layer kScales / vScales (default 1.0).
  const std::string kv_dtype = r.has("kvCacheDtype") ? r.string("kvCacheDtype") : "auto";
  if (kv_dtype == "fp8_e4m3") kv.fp8 = KvFp8::E4m3;
  else if (kv_dtype == "fp8_e5m2") kv.fp8 = KvFp8::E5m2;
  else if (kv_dtype != "auto") r.fail_range("kvCacheDtype must be 'auto', 'fp8_e4m3' or 'fp8_e5m2', got '" + kv_dtype + "'");
  if (kv.block_size == 0 || kv.block_size > kMaxBlockSize) r.fail_range("blockSize must be in 1.." + std::to_string(kMaxBlockSize));
  if (kv.num_blocks == 0) r.fail_range("numBlocks must be positive");
  const size_t threads = static_cast<size_t>(r.number_or("threads", 1));
  const double max_tokens = r.number_or("maxBatchTokens", 2048), max_seqs = r.number_or("maxSeqs", 256);
  if (!(max_tokens >= 1) || !(max_seqs >= 1)) r.fail_range("maxBatchTokens and maxSeqs must be positive");

  // What this rank holds (model_parallel.h); absent: the whole model.
  RankShard shard;
  shard.vocab_end = s.vocab;
  if (r.has("shard")) {
    PropReader sr{env, r.object("shard"), r.where + ".shard"};
    const double tp = sr.number("tpSize"), rank = sr.number("tpRank");
    if (!(tp == 1 || tp == 2 || tp == 4 || tp == 8))
      sr.fail_range("tpSize must divide the " + std::to_string(kRowSegments) + " row-parallel segments: 1, 2, 4 or 8");
    if (!(rank >= 0 && rank < tp && rank == static_cast<double>(static_cast<size_t>(rank)))) sr.fail_range("tpRank must be in 0..tpSize-1");
    shard.tp_size = static_cast<size_t>(tp);
    shard.tp_rank = static_cast<size_t>(rank);
    shard.vocab_begin = static_cast<size_t>(sr.number("vocabStart"));
    shard.vocab_end = static_cast<size_t>(sr.number("vocabEnd"));
    if (!(shard.vocab_begin <= shard.vocab_end && shard.vocab_end <= s.vocab)) sr.fail_range("need 0 <= vocabStart <= vocabEnd <= vocab");
    shard.embeds = sr.boolean("embeds");
    shard.lm_head = sr.boolean("lmHead");
    shard.timeout_ms = sr.number_or("collectiveTimeoutMs", shard.timeout_ms);
    if (shard.tp_size > 1) {
      shard.group = collective_group_of(env, sr.obj.Get("group"), sr.where + ".group");
      if (shard.group->ranks() != shard.tp_size || static_cast<size_t>(shard.group->rank()) != shard.tp_rank)
        sr.fail_range("group must be the stage's tensor group (" + std::to_string(shard.tp_size) + " ranks) attached as rank " +
                      std::to_string(shard.tp_rank) + ", got rank " + std::to_string(shard.group->rank()) + " of " +
                      std::to_string(shard.group->ranks()));
    } else if (shard.vocab_begin != 0 || shard.vocab_end != s.vocab) {
      sr.fail_range("a vocabulary slice needs tpSize > 1");
    }
  }

  ModelWeights w;
  const size_t H = s.hidden, Vl = shard.local_vocab();
  // fp8Kernel 'table' picks the portable conversion even where VBMI exists (tests compare them).
  const std::string f8_choice = r.has("fp8Kernel") ? r.string("fp8Kernel") : "auto";
  if (f8_choice != "auto" && f8_choice != "table") r.fail_range("fp8Kernel must be 'auto' or 'table', got '" + f8_choice + "'");
  const Fp8Kernels* f8 = f8_choice == "table" ? fp8_kernels_table(isa) : fp8_kernels(isa, cpu);
  w.fp8 = f8;
  w.embed = weight_arg(r, "embed", s.bf16, shard.embeds ? Vl * H : 0);
  w.lm_head = linear_arg(r, "lmHead", s.bf16, shard.lm_head ? Vl : 0, H, 1, f8);
  w.final_norm = norm_arg(r, "finalNorm", H);
  w.inv_freq = r.float32s("invFreq");
  if (w.inv_freq.size() != s.head_dim / 2) r.fail_range("invFreq must have headDim / 2 entries");
  if (kv.fp8 != KvFp8::None) {
    w.k_scales = r.has("kScales") ? r.float32s("kScales") : std::vector<float>(s.layers, 1.0f);
    w.v_scales = r.has("vScales") ? r.float32s("vScales") : std::vector<float>(s.layers, 1.0f);
    if (w.k_scales.size() != s.layers || w.v_scales.size() != s.layers) r.fail_range("kScales and vScales need one entry per layer");
    for (size_t l = 0; l < s.layers; ++l)
      if (!(w.k_scales[l] > 0) || !(w.v_scales[l] > 0) || !std::isfinite(w.k_scales[l]) || !std::isfinite(w.v_scales[l]))
        r.fail_range("layer " + std::to_string(l) + ": KV scales must be finite and positive");
  }
  const Napi::Value layers_v = r.obj.Get("layerWeights");
  if (!layers_v.IsArray()) throw Napi::TypeError::New(env, "modelCreate: desc.layerWeights must be an array");
  Napi::Array layers = layers_v.As<Napi::Array>();
  if (layers.Length() != s.layers) r.fail_range("layerWeights has " + std::to_string(layers.Length()) + " layers, expected " + std::to_string(s.layers));
  for (uint32_t l = 0; l < layers.Length(); ++l) {
    PropReader lr{env, layers.Get(l).As<Napi::Object>(), "modelCreate: desc.layerWeights[" + std::to_string(l) + "]"};
    LayerWeights lw;
    lw.input_norm = norm_arg(lr, "inputNorm", H);
    lw.qkv = linear_arg(lr, "qkv", s.bf16, s.qkv_cols(), H, 1, f8);
    lw.o = linear_arg(lr, "o", s.bf16, H, s.q_cols(), kRowSegments, f8, &shard);
    lw.post_norm = norm_arg(lr, "postNorm", H);
    lw.gate_up = linear_arg(lr, "gateUp", s.bf16, 2 * s.intermediate, H, 1, f8, nullptr, 2);
    lw.down = linear_arg(lr, "down", s.bf16, H, s.intermediate, kRowSegments, f8, &shard);
    w.layers.push_back(lw);
  }

  auto* h = new ModelHandle();
  try {
    h->model = std::make_unique<Model>(s, std::move(w), kv, isa, threads, static_cast<size_t>(max_tokens),
                                       static_cast<size_t>(max_seqs), std::move(shard));
  } catch (const std::bad_alloc&) {
    delete h;
    throw Napi::Error::New(env, "modelCreate: cannot allocate the KV cache (" + std::to_string(kv.layer_bytes() * s.layers) + " bytes)");
  } catch (const std::invalid_argument& e) {
    delete h;
    throw Napi::RangeError::New(env, std::string("modelCreate: ") + e.what());
  }
  h->weights = Napi::Persistent(r.obj);
  Napi::External<ModelHandle> handle = Napi::External<ModelHandle>::New(env, h, [](Napi::Env, ModelHandle* p) { delete p; });
  if (napi_type_tag_object(env, handle, &kModelHandleTag) != napi_ok) throw Napi::Error::New(env, "modelCreate: could not tag the model handle");
  return handle;
}

StepInput read_step_input(const PropReader& r, size_t vocab) {
  StepInput in;
  in.tokens = r.int32s("tokens");
  in.positions = r.int32s("positions");
  in.slot_mapping = r.int32s("slotMapping");
  in.query_lens = r.int32s("queryLens");
  in.context_lens = r.int32s("contextLens");
  in.block_tables = r.int32s("blockTables");
  const double mb = r.number("maxBlocksPerSeq");
  if (!(mb >= 0)) r.fail_range("maxBlocksPerSeq must be a non-negative integer");
  in.max_blocks = static_cast<size_t>(mb);
  in.sample_rows = r.has("sampleRows") ? r.int32s("sampleRows") : std::vector<int32_t>();
  if (!in.sample_rows.empty()) {
    PropReader sr{r.env, r.object("sampling"), r.where + ".sampling"};
    in.sampling = read_sampling(sr, in.sample_rows.size(), vocab);
  }
  if (r.has("promptTargets")) in.prompt_targets = r.int32s("promptTargets");
  in.prompt_top_n = static_cast<size_t>(r.number_or("promptTopN", 0));
  in.return_logits = r.has("returnLogits") && r.boolean("returnLogits");
  if (r.has("hidden")) in.hidden = r.float32s("hidden");
  return in;
}

template <typename T, typename A>
A copy_to_js(Napi::Env env, const std::vector<T>& v) {
  A a = A::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(T));
  return a;
}

class StepWorker : public Napi::AsyncWorker {
 public:
  StepWorker(Napi::Env env, ModelHandle* h, Napi::Value handle, StepInput in)
      : Napi::AsyncWorker(env, "troupe:modelStep"),
        deferred_(Napi::Promise::Deferred::New(env)),
        h_(h),
        handle_(Napi::Persistent(handle)),
        in_(std::move(in)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      out_ = h_->model->step(in_);
    } catch (const std::exception& e) {
      SetError(std::string("modelStep: ") + e.what());
    }
  }

  void OnOK() override {
    h_->in_flight = false;
    Napi::Env env = Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("sampled", copy_to_js<int32_t, Napi::Int32Array>(env, out_.sampled));
    o.Set("sampledLogprobs", copy_to_js<float, Napi::Float32Array>(env, out_.sampled_logprob));
    o.Set("topN", Napi::Number::New(env, static_cast<double>(out_.top_n)));
    o.Set("topIds", copy_to_js<int32_t, Napi::Int32Array>(env, out_.top_ids));
    o.Set("topLogprobs", copy_to_js<float, Napi::Float32Array>(env, out_.top_logprobs));
    if (!in_.prompt_targets.empty()) {
      o.Set("promptLogprobs", copy_to_js<float, Napi::Float32Array>(env, out_.prompt_logprob));
      o.Set("promptTopIds", copy_to_js<int32_t, Napi::Int32Array>(env, out_.prompt_top_ids));
      o.Set("promptTopLogprobs", copy_to_js<float, Napi::Float32Array>(env, out_.prompt_top_logprobs));
    }
    if (in_.return_logits) o.Set("logits", copy_to_js<float, Napi::Float32Array>(env, out_.logits));
    if (!h_->model->shard().lm_head) o.Set("hidden", copy_to_js<float, Napi::Float32Array>(env, out_.hidden));
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override {
    h_->in_flight = false;
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  ModelHandle* h_;
  Napi::Reference<Napi::Value> handle_;  // keeps the handle (and the model) alive meanwhile
  StepInput in_;
  StepOutput out_;
};

Napi::Value ModelStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelHandle* h = model_handle_arg(info, "modelStep");
  if (!info[1].IsObject()) throw Napi::TypeError::New(env, "modelStep: input must be an object");
  if (h->in_flight) throw Napi::Error::New(env, "modelStep: a step is already running on this model (steps are sequential)");
  StepInput in = read_step_input(PropReader{env, info[1].As<Napi::Object>(), "modelStep: input"}, h->model->shape().vocab);
  const std::string problem = h->model->validate(in);
  if (!problem.empty()) throw Napi::RangeError::New(env, "modelStep: " + problem);
  auto* worker = new StepWorker(env, h, info[0], std::move(in));
  Napi::Promise p = worker->promise();
  h->in_flight = true;
  worker->Queue();
  return p;
}

Napi::Value ModelStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelHandle* h = model_handle_arg(info, "modelStats");
  const ModelCounters& c = h->model->counters();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  o.Set("steps", num(c.steps.load()));
  o.Set("tokens", num(c.tokens.load()));
  o.Set("gemmCalls", num(c.gemm_calls.load()));
  o.Set("weightBytesRead", num(c.weight_bytes_read.load()));
  o.Set("peakScratchBytes", num(c.peak_scratch_bytes.load()));
  o.Set("scratchCapacityBytes", num(h->model->scratch_capacity()));
  o.Set("scratchGrowths", num(c.scratch_growths.load()));
  o.Set("poolJobs", num(h->model->pool().jobs()));
  o.Set("poolSleeps", num(h->model->pool().sleeps()));
  o.Set("kvCacheBytes", num(h->model->kv_cache_bytes()));
  o.Set("threads", num(h->model->threads()));
  o.Set("allReduces", num(c.all_reduces.load()));
  o.Set("allReduceBytes", num(c.all_reduce_bytes.load()));
  o.Set("topPRows", num(c.top_p_rows.load()));
  o.Set("topPFromRecords", num(c.top_p_from_records.load()));
  set_linear_stats(env, o, *h->model);
  return o;
}

Napi::Value ModelRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ModelHandle* h = tagged_model_handle(env, info[0]);
  if (h == nullptr) throw Napi::TypeError::New(env, "modelRelease: handle must be a model handle from modelCreate, got " + describe(info[0]));
  if (h->in_flight) throw Napi::Error::New(env, "modelRelease: a step is still running");
  h->model.reset();
  h->weights.Reset();
  return env.Undefined();
}

uint64_t u64_arg(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  return static_cast<uint64_t>(dim_arg(info, i, fn, name));
}

// out[i] = (2 u(seed, stream, offset + i) - 1) * scale, stored as bf16 bits (Uint16Array) or fp32.
Napi::Value FillUniform(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint64_t seed = u64_arg(info, 1, "fillUniform", "seed");
  const uint64_t stream = u64_arg(info, 2, "fillUniform", "stream");
  const uint64_t offset = u64_arg(info, 3, "fillUniform", "offset");
  if (!info[4].IsNumber()) throw Napi::TypeError::New(env, "fillUniform: scale must be a number");
  const float scale = info[4].As<Napi::Number>().FloatValue();
  const uint64_t key = counter_uniform_key(seed, stream);
  if (info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    const ArrayView<uint16_t> out = uint16_array_arg(info, 0, "fillUniform", "out");
    fill_uniform_bf16(out.data, out.length, key, offset, scale);
  } else {
    const ArrayView<float> out = float32_array_arg(info, 0, "fillUniform", "out (Uint16Array bf16 or Float32Array)");
    fill_uniform_f32(out.data, out.length, key, offset, scale);
  }
  return env.Undefined();
}

}  // namespace

void register_model_exports(Napi::Env env, Napi::Object exports, const CpuFeatures& cpu) {
  exports.Set("allocAligned", Napi::Function::New(env, AllocAligned, "allocAligned"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("modelCreate", Napi::Function::New(env, [cpu](const Napi::CallbackInfo& info) { return ModelCreate(info, cpu); }, "modelCreate"));
  exports.Set("modelStep", Napi::Function::New(env, ModelStep, "modelStep"));
  exports.Set("modelStats", Napi::Function::New(env, ModelStats, "modelStats"));
  exports.Set("modelRelease", Napi::Function::New(env, ModelRelease, "modelRelease"));
  exports.Set("fillUniform", Napi::Function::New(env, FillUniform, "fillUniform"));
  register_fp8_exports(env, exports);
}

}  // namespace troupe
