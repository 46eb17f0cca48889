#include "bindings/collectives_binding.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bindings/args.h"
#include "collectives/link_group.h"
#include "collectives/shm_group.h"

namespace troupe {
namespace {

using coll::CollectiveError;
using coll::ErrorCode;
using coll::ShmGroup;

// What a JS handle (an External) points to. close() empties it; an async call
// in flight holds its own reference, so the mapping outlives it.
struct Holder {
  std::shared_ptr<ShmGroup> group;
};

const napi_type_tag kHandleTag = {0x7b1c9d2e5f4a3b21ULL, 0x9e8d7c6b5a493827ULL};
constexpr const char* kDescriptorKind = "troupe.shm-collectives";
constexpr double kMaxTimeoutMs = 24.0 * 3600 * 1000;
constexpr double kMaxSpinMicros = 10000;
constexpr double kMaxSafe = 9007199254740991.0;

Napi::Error js_error(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error e = code == ErrorCode::kType    ? Napi::TypeError::New(env, message)
                  : code == ErrorCode::kRange ? Napi::RangeError::New(env, message)
                                              : Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, coll::error_code_name(code)));
  return e;
}

[[noreturn]] void rethrow(Napi::Env env, const CollectiveError& e) { throw js_error(env, e.code(), e.what()); }

std::shared_ptr<ShmGroup> group_arg(const Napi::CallbackInfo& info, const std::string& fn) {
  const Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<Holder>>().CheckTypeTag(&kHandleTag))
    throw js_error(info.Env(), ErrorCode::kType, fn + ": expected a collectives group handle, got " + describe(v));
  Holder* h = v.As<Napi::External<Holder>>().Data();
  if (!h->group) throw js_error(info.Env(), ErrorCode::kClosed, fn + ": the group handle is closed");
  return h->group;
}

Napi::Value wrap_group(Napi::Env env, std::unique_ptr<ShmGroup> g) {
  auto* holder = new Holder{std::shared_ptr<ShmGroup>(std::move(g))};
  Napi::External<Holder> ext = Napi::External<Holder>::New(env, holder, [](Napi::Env, Holder* h) { delete h; });
  ext.TypeTag(&kHandleTag);
  return ext;
}

double number_arg(Napi::Env env, const Napi::Value& v, const std::string& what, double lo, double hi,
                  bool integer) {
  if (!v.IsNumber()) throw js_error(env, ErrorCode::kType, what + " must be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || (integer && std::floor(d) != d)) {
    char range[96];
    std::snprintf(range, sizeof range, "%s in %.17g..%.17g", integer ? "an integer" : "a number", lo, hi);
    throw js_error(env, ErrorCode::kRange, what + " must be " + range + ", got " + v.ToString().Utf8Value());
  }
  return d;
}

double timeout_arg(const Napi::CallbackInfo& info, size_t index, const std::string& fn) {
  const Napi::Value v = info[index];
  if (!v.IsNumber()) throw js_error(info.Env(), ErrorCode::kType, fn + ": timeoutMs must be a number, got " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d > 0 && d <= kMaxTimeoutMs))
    throw js_error(info.Env(), ErrorCode::kRange,
                   fn + ": timeoutMs must be > 0 and <= " + std::to_string(int64_t(kMaxTimeoutMs)) +
                       " (every wait is bounded), got " + v.ToString().Utf8Value());
  return d;
}

Napi::Uint8Array uint8_arg(const Napi::CallbackInfo& info, size_t index, const std::string& what) {
  const Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw js_error(info.Env(), ErrorCode::kType, what + " must be a Uint8Array, got " + describe(v));
  return v.As<Napi::Uint8Array>();
}

Napi::Float32Array float32_arg(const Napi::CallbackInfo& info, size_t index, const std::string& what) {
  const Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw js_error(info.Env(), ErrorCode::kType, what + " must be a Float32Array, got " + describe(v));
  return v.As<Napi::Float32Array>();
}

// One call at a time per handle (a rank's generations are sequential).
class BusyGuard {
 public:
  BusyGuard(Napi::Env env, ShmGroup& g, const std::string& fn) : g_(g) {
    if (!g_.TryAcquire())
      throw js_error(env, ErrorCode::kBusy, fn + ": another collective call is in progress on this handle "
                                                 "(a rank makes one call at a time)");
  }
  ~BusyGuard() {
    if (held_) g_.Release();
  }
  void hand_over() { held_ = false; }  // an async worker releases it

 private:
  ShmGroup& g_;
  bool held_ = true;
};

// ---- descriptor <-> JS -----------------------------------------------------------

Napi::Value ShmDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const coll::Descriptor& d = group_arg(info, "descriptor")->descriptor();
  char id[17];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(d.id));
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", kDescriptorKind);
  o.Set("version", double(d.version));
  o.Set("pid", double(d.pid));
  o.Set("fd", double(d.fd));
  o.Set("bytes", double(d.bytes));
  o.Set("ranks", double(d.ranks));
  o.Set("capacityBytes", double(d.capacity));
  o.Set("broadcastCapacityBytes", double(d.bcast_capacity));
  o.Set("id", id);
  return o;
}

coll::Descriptor parse_descriptor(Napi::Env env, const Napi::Value& v) {
  const std::string fn = "attachGroup: ";
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray())
    throw js_error(env, ErrorCode::kType, fn + "descriptor must be the object CollectiveGroup.descriptor gave, got " +
                                              describe(v));
  Napi::Object o = v.As<Napi::Object>();
  const Napi::Value kind = o.Get("kind");
  if (!kind.IsString() || kind.As<Napi::String>().Utf8Value() != kDescriptorKind)
    throw js_error(env, ErrorCode::kType, fn + "descriptor.kind must be '" + kDescriptorKind +
                                              "' (pass CollectiveGroup.descriptor unchanged), got " +
                                              describe(kind));
  auto field = [&](const char* name, double hi) {
    return number_arg(env, o.Get(name), fn + "descriptor." + name, 0, hi, true);
  };
  coll::Descriptor d;
  d.version = uint32_t(field("version", 4294967295.0));
  d.pid = int64_t(field("pid", 4294967295.0));
  d.fd = int64_t(field("fd", 4294967295.0));
  d.bytes = uint64_t(field("bytes", kMaxSafe));
  d.ranks = uint32_t(field("ranks", 4294967295.0));
  d.capacity = uint64_t(field("capacityBytes", kMaxSafe));
  d.bcast_capacity = uint64_t(field("broadcastCapacityBytes", kMaxSafe));
  const Napi::Value id = o.Get("id");
  const std::string hex = id.IsString() ? id.As<Napi::String>().Utf8Value() : "";
  if (hex.empty() || hex.size() > 16 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw js_error(env, ErrorCode::kType, fn + "descriptor.id must be a string of 1 to 16 hex digits, got " +
                                              describe(id));
  d.id = std::stoull(hex, nullptr, 16);
  return d;
}

// ---- functions ------------------------------------------------------------------------

Napi::Value ShmCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double ranks = number_arg(env, info[0], "createGroup: ranks", 1, coll::kMaxRanks, true);
  const double cap = number_arg(env, info[1], "createGroup: capacityBytes", 4, double(coll::kMaxCapacity), true);
  const double bcap =
      number_arg(env, info[2], "createGroup: broadcastCapacityBytes", 1, double(coll::kMaxCapacity), true);
  try {
    return wrap_group(env, ShmGroup::Create(uint32_t(ranks), uint64_t(cap), uint64_t(bcap)));
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
}

Napi::Value ShmAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const coll::Descriptor d = parse_descriptor(env, info[0]);
  const double rank = number_arg(env, info[1], "attachGroup: rank", 0, coll::kMaxRanks - 1, true);
  const double spin_us = number_arg(env, info[2], "attachGroup: spinMicros", 0, kMaxSpinMicros, false);
  try {
    return wrap_group(env, ShmGroup::Attach(d, int32_t(rank), uint64_t(spin_us * 1000)));
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
}

Napi::Value ShmRank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), group_arg(info, "rank")->rank());
}

// Optional segment count of an all-reduce (1 when absent).
size_t segments_arg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || info[index].IsUndefined()) return 1;
  return size_t(number_arg(info.Env(), info[index], std::string(what) + ": segments", 1, 1024, true));
}

Napi::Value ShmAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ShmGroup> g = group_arg(info, "allReduce");
  Napi::Float32Array data = float32_arg(info, 1, "allReduce: data");
  const double timeout = timeout_arg(info, 2, "allReduce");
  const size_t segments = segments_arg(info, 3, "allReduce");
  BusyGuard busy(env, *g, "allReduce");
  try {
    g->AllReduce(data.Data(), data.ElementLength(), timeout, segments);
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
  return env.Undefined();
}

Napi::Value ShmBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ShmGroup> g = group_arg(info, "broadcast");
  const uint32_t root = uint32_t(number_arg(env, info[1], "broadcast: root", 0, coll::kMaxRanks - 1, true));
  const bool has_buffer = !info[2].IsUndefined() && !info[2].IsNull();
  const bool is_root = g->rank() >= 0 && uint32_t(g->rank()) == root;
  if (is_root && !has_buffer)
    throw js_error(env, ErrorCode::kType, "broadcast: the root (rank " + std::to_string(root) +
                                              ") must pass the bytes to send as a Uint8Array");
  Napi::Uint8Array buf = has_buffer ? uint8_arg(info, 2, is_root ? "broadcast: data" : "broadcast: out")
                                    : Napi::Uint8Array();
  const double timeout = timeout_arg(info, 3, "broadcast");
  BusyGuard busy(env, *g, "broadcast");
  Napi::Uint8Array fresh;
  try {
    const size_t len = g->Broadcast(
        root, has_buffer ? buf.Data() : nullptr, has_buffer ? buf.ElementLength() : 0,
        [&](size_t n) {
          fresh = Napi::Uint8Array::New(env, n);
          return fresh.Data();
        },
        timeout);
    if (is_root) return buf;
    if (!has_buffer) return fresh;
    return Napi::Uint8Array::New(env, len, buf.ArrayBuffer(), buf.ByteOffset());
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
}

// ---- async variants: the wait runs on a libuv pool thread -----------------------------

class CollectiveWorker : public Napi::AsyncWorker {
 public:
  CollectiveWorker(Napi::Env env, const char* name, std::shared_ptr<ShmGroup> g)
      : Napi::AsyncWorker(env, name), group_(std::move(g)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result() = 0;

  void Execute() override {
    try {
      Run();
    } catch (const CollectiveError& e) {
      failed_ = true;
      code_ = e.code();
      message_ = e.what();
    } catch (const std::exception& e) {
      failed_ = true;
      code_ = ErrorCode::kSystem;
      message_ = e.what();
    }
    group_->Release();
  }
  void OnOK() override {
    if (failed_) {
      deferred_.Reject(js_error(Env(), code_, message_).Value());
      return;
    }
    deferred_.Resolve(Result());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  std::shared_ptr<ShmGroup> group_;
  Napi::Promise::Deferred deferred_;
  bool failed_ = false;
  ErrorCode code_ = ErrorCode::kSystem;
  std::string message_;
};

class AllReduceWorker : public CollectiveWorker {
 public:
  AllReduceWorker(Napi::Env env, std::shared_ptr<ShmGroup> g, Napi::Float32Array data, double timeout, size_t segments)
      : CollectiveWorker(env, "troupe.allReduce", std::move(g)),
        keep_(Napi::Persistent(data.As<Napi::Object>())),
        data_(data.Data()),
        n_(data.ElementLength()),
        timeout_(timeout),
        segments_(segments) {}

 protected:
  void Run() override { group_->AllReduce(data_, n_, timeout_, segments_); }
  Napi::Value Result() override { return keep_.Value(); }

 private:
  Napi::ObjectReference keep_;  // the array stays alive (and its memory in place) until we settle
  float* data_;
  size_t n_;
  double timeout_;
  size_t segments_;
};

class BroadcastWorker : public CollectiveWorker {
 public:
  BroadcastWorker(Napi::Env env, std::shared_ptr<ShmGroup> g, uint32_t root, Napi::Uint8Array buf,
                  bool has_buffer, bool is_root, double timeout)
      : CollectiveWorker(env, "troupe.broadcast", std::move(g)),
        root_(root),
        has_buffer_(has_buffer),
        is_root_(is_root),
        data_(has_buffer ? buf.Data() : nullptr),
        n_(has_buffer ? buf.ElementLength() : 0),
        timeout_(timeout) {
    if (has_buffer) keep_ = Napi::Persistent(buf.As<Napi::Object>());
  }

 protected:
  void Run() override {
    len_ = group_->Broadcast(
        root_, data_, n_,
        [this](size_t n) {
          received_.resize(n);
          return received_.data();
        },
        timeout_);
  }
  Napi::Value Result() override {
    Napi::Env env = Env();
    if (is_root_) return keep_.Value();
    if (has_buffer_) {
      Napi::Uint8Array buf = keep_.Value().As<Napi::Uint8Array>();
      return Napi::Uint8Array::New(env, len_, buf.ArrayBuffer(), buf.ByteOffset());
    }
    Napi::Uint8Array out = Napi::Uint8Array::New(env, len_);
    if (len_ != 0) std::memcpy(out.Data(), received_.data(), len_);
    return out;
  }

 private:
  Napi::ObjectReference keep_;
  uint32_t root_;
  bool has_buffer_, is_root_;
  uint8_t* data_;
  size_t n_;
  double timeout_;
  size_t len_ = 0;
  std::vector<uint8_t> received_;
};

Napi::Value ShmAllReduceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ShmGroup> g = group_arg(info, "allReduceAsync");
  Napi::Float32Array data = float32_arg(info, 1, "allReduceAsync: data");
  const double timeout = timeout_arg(info, 2, "allReduceAsync");
  const size_t segments = segments_arg(info, 3, "allReduceAsync");
  BusyGuard busy(env, *g, "allReduceAsync");
  auto* worker = new AllReduceWorker(env, g, data, timeout, segments);
  busy.hand_over();
  worker->Queue();
  return worker->promise();
}

Napi::Value ShmBroadcastAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ShmGroup> g = group_arg(info, "broadcastAsync");
  const uint32_t root = uint32_t(number_arg(env, info[1], "broadcastAsync: root", 0, coll::kMaxRanks - 1, true));
  const bool has_buffer = !info[2].IsUndefined() && !info[2].IsNull();
  const bool is_root = g->rank() >= 0 && uint32_t(g->rank()) == root;
  if (is_root && !has_buffer)
    throw js_error(env, ErrorCode::kType, "broadcastAsync: the root (rank " + std::to_string(root) +
                                              ") must pass the bytes to send as a Uint8Array");
  Napi::Uint8Array buf = has_buffer ? uint8_arg(info, 2, is_root ? "broadcastAsync: data" : "broadcastAsync: out")
                                    : Napi::Uint8Array();
  const double timeout = timeout_arg(info, 3, "broadcastAsync");
  BusyGuard busy(env, *g, "broadcastAsync");
  auto* worker = new BroadcastWorker(env, g, root, buf, has_buffer, is_root, timeout);
  busy.hand_over();
  worker->Queue();
  return worker->promise();
}

Napi::Value ShmBumpEpoch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ShmGroup> g = group_arg(info, "bumpEpoch");
  try {
    return Napi::Number::New(env, g->BumpEpoch());
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
}

Napi::Value ShmEpoch(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), group_arg(info, "epoch")->Epoch());
}

Napi::Value ShmStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const coll::Stats s = group_arg(info, "stats")->stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("allReduces", double(s.all_reduces));
  o.Set("broadcastsSent", double(s.broadcasts_sent));
  o.Set("broadcastsReceived", double(s.broadcasts_received));
  o.Set("bytesReduced", double(s.bytes_reduced));
  o.Set("spinWaits", double(s.spin_waits));
  o.Set("futexWaits", double(s.futex_waits));
  return o;
}

Napi::Value ShmClose(const Napi::CallbackInfo& info) {
  const Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<Holder>>().CheckTypeTag(&kHandleTag))
    throw js_error(info.Env(), ErrorCode::kType, "close: expected a collectives group handle, got " + describe(v));
  v.As<Napi::External<Holder>>().Data()->group.reset();  // idempotent
  return info.Env().Undefined();
}


// ---- link groups (link_group.h): ranks on different nodes ---------------------------

struct LinkHolder {
  std::shared_ptr<coll::LinkGroup> group;
};

const napi_type_tag kLinkTag = {0x3c5e7a9b1d2f4e60ULL, 0x8a7b6c5d4e3f2a19ULL};

// Owns the thread-safe function that carries this rank's vectors to JS. The
// thread may end first (a worker terminated): its teardown finalizes the
// function, which marks it gone (under mu) and aborts the group, so no call
// or release touches it after.
struct LinkSender {
  std::mutex mu;
  Napi::ThreadSafeFunction fn;
  bool alive = true;
  std::weak_ptr<coll::LinkGroup> group;
  ~LinkSender() {
    std::lock_guard<std::mutex> lock(mu);
    if (alive) fn.Release();
  }
};

struct LinkPayload {
  uint32_t generation;
  std::vector<float> part;
};

std::shared_ptr<coll::LinkGroup> link_arg(const Napi::CallbackInfo& info, const std::string& fn) {
  const Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<LinkHolder>>().CheckTypeTag(&kLinkTag))
    throw js_error(info.Env(), ErrorCode::kType, fn + ": expected a link group handle, got " + describe(v));
  LinkHolder* h = v.As<Napi::External<LinkHolder>>().Data();
  if (!h->group) throw js_error(info.Env(), ErrorCode::kClosed, fn + ": the link group handle is closed");
  return h->group;
}

// linkCreate(ranks, rank, capacityBytes, onPart(generation, Float32Array)): handle.
// onPart runs on this thread for every all-reduce this rank makes (its vector,
// to be told to the peers); it must not throw.
Napi::Value LinkCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double ranks = number_arg(env, info[0], "linkCreate: ranks", 2, coll::kMaxRanks, true);
  const double rank = number_arg(env, info[1], "linkCreate: rank", 0, coll::kMaxRanks - 1, true);
  const double cap = number_arg(env, info[2], "linkCreate: capacityBytes", 4, double(coll::kMaxCapacity), true);
  if (!info[3].IsFunction()) throw js_error(env, ErrorCode::kType, "linkCreate: onPart must be a function, got " + describe(info[3]));
  auto sender = std::make_shared<LinkSender>();
  std::weak_ptr<LinkSender> weak_sender = sender;
  sender->fn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "troupe:linkPart", 0, 1, [weak_sender](Napi::Env) {
    if (auto s = weak_sender.lock()) {
      std::shared_ptr<coll::LinkGroup> g;
      {
        std::lock_guard<std::mutex> lock(s->mu);
        s->alive = false;
        g = s->group.lock();
      }
      if (g) g->Abort();
    }
  });
  sender->fn.Unref(env);  // a rank's handle does not keep its thread alive
  auto send = [sender](uint32_t generation, std::vector<float>&& part) {
    std::lock_guard<std::mutex> lock(sender->mu);  // the queue is unbounded: BlockingCall does not block
    if (!sender->alive) return false;
    auto* payload = new LinkPayload{generation, std::move(part)};
    const napi_status status = sender->fn.BlockingCall(payload, [](Napi::Env env, Napi::Function fn, LinkPayload* p) {
      std::unique_ptr<LinkPayload> owned(p);
      if (env == nullptr) return;  // the thread is going away
      Napi::Float32Array arr = Napi::Float32Array::New(env, owned->part.size());
      if (!owned->part.empty()) std::memcpy(arr.Data(), owned->part.data(), owned->part.size() * sizeof(float));
      fn.Call({Napi::Number::New(env, owned->generation), arr});
    });
    if (status != napi_ok) delete payload;
    return status == napi_ok;
  };
  try {
    auto group = std::make_shared<coll::LinkGroup>(uint32_t(ranks), int32_t(rank), uint64_t(cap), std::move(send));
    {
      std::lock_guard<std::mutex> lock(sender->mu);
      sender->group = group;
    }
    auto* holder = new LinkHolder{std::move(group)};
    Napi::External<LinkHolder> ext = Napi::External<LinkHolder>::New(env, holder, [](Napi::Env, LinkHolder* h) { delete h; });
    ext.TypeTag(&kLinkTag);
    return ext;
  } catch (const CollectiveError& e) {
    rethrow(env, e);
  }
}

// linkPut(handle, generation, fromRank, Float32Array): '' when taken, else why not.
Napi::Value LinkPut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<coll::LinkGroup> g = link_arg(info, "linkPut");
  const double generation = number_arg(env, info[1], "linkPut: generation", 1, 4294967295.0, true);
  const double from = number_arg(env, info[2], "linkPut: fromRank", 0, coll::kMaxRanks - 1, true);
  Napi::Float32Array data = float32_arg(info, 3, "linkPut: data");
  return Napi::String::New(env, g->Put(uint32_t(generation), uint32_t(from), data.Data(), data.ElementLength()));
}

Napi::Value LinkAbort(const Napi::CallbackInfo& info) {
  link_arg(info, "linkAbort")->Abort();
  return info.Env().Undefined();
}

Napi::Value LinkGeneration(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), link_arg(info, "linkGeneration")->generation());
}

Napi::Value LinkStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const coll::LinkStats s = link_arg(info, "linkStats")->stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("allReduces", double(s.all_reduces));
  o.Set("bytesReduced", double(s.bytes_reduced));
  o.Set("bytesSent", double(s.bytes_sent));
  o.Set("bytesReceived", double(s.bytes_received));
  return o;
}

Napi::Value LinkClose(const Napi::CallbackInfo& info) {
  const Napi::Value v = info[0];
  if (!v.IsExternal() || !v.As<Napi::External<LinkHolder>>().CheckTypeTag(&kLinkTag))
    throw js_error(info.Env(), ErrorCode::kType, "linkClose: expected a link group handle, got " + describe(v));
  LinkHolder* h = v.As<Napi::External<LinkHolder>>().Data();
  if (h->group) h->group->Abort();  // a step still waiting fails now (the model holds its own reference)
  h->group.reset();
  return info.Env().Undefined();
}

// linkAllReduceAsync(handle, Float32Array, timeoutMs, segments?): Promise<Float32Array>
// (tests and tools: the model step calls AllReduce itself).
class LinkAllReduceWorker : public Napi::AsyncWorker {
 public:
  LinkAllReduceWorker(Napi::Env env, std::shared_ptr<coll::LinkGroup> g, Napi::Float32Array data, double timeout, size_t segments)
      : Napi::AsyncWorker(env, "troupe.linkAllReduce"), group_(std::move(g)), deferred_(Napi::Promise::Deferred::New(env)),
        keep_(Napi::Persistent(data.As<Napi::Object>())), data_(data.Data()), n_(data.ElementLength()), timeout_(timeout), segments_(segments) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      group_->AllReduce(data_, n_, timeout_, segments_);
    } catch (const CollectiveError& e) {
      failed_ = true;
      code_ = e.code();
      message_ = e.what();
    }
  }
  void OnOK() override {
    if (failed_) return deferred_.Reject(js_error(Env(), code_, message_).Value());
    deferred_.Resolve(keep_.Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<coll::LinkGroup> group_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  float* data_;
  size_t n_;
  double timeout_;
  size_t segments_;
  bool failed_ = false;
  ErrorCode code_ = ErrorCode::kSystem;
  std::string message_;
};

Napi::Value LinkAllReduceAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<coll::LinkGroup> g = link_arg(info, "linkAllReduceAsync");
  Napi::Float32Array data = float32_arg(info, 1, "linkAllReduceAsync: data");
  const double timeout = timeout_arg(info, 2, "linkAllReduceAsync");
  const size_t segments = segments_arg(info, 3, "linkAllReduceAsync");
  auto* worker = new LinkAllReduceWorker(env, g, data, timeout, segments);
  worker->Queue();
  return worker->promise();
}

}  // namespace

std::shared_ptr<coll::TensorCollective> collective_group_of(Napi::Env env, Napi::Value v, const std::string& what) {
  if (v.IsExternal() && v.As<Napi::External<LinkHolder>>().CheckTypeTag(&kLinkTag)) {
    LinkHolder* h = v.As<Napi::External<LinkHolder>>().Data();
    if (!h->group) throw js_error(env, ErrorCode::kClosed, what + ": the link group handle is closed");
    return h->group;
  }
  if (!v.IsExternal() || !v.As<Napi::External<Holder>>().CheckTypeTag(&kHandleTag))
    throw js_error(env, ErrorCode::kType, what + " must be a collectives rank handle (CollectiveRank or LinkCollective), got " + describe(v));
  Holder* h = v.As<Napi::External<Holder>>().Data();
  if (!h->group) throw js_error(env, ErrorCode::kClosed, what + ": the group handle is closed");
  if (h->group->rank() < 0) throw js_error(env, ErrorCode::kState, what + ": the creator's handle is not a rank; attach one");
  return h->group;
}

void register_collectives(Napi::Env env, Napi::Object exports) {
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
  const Entry entries[] = {
      {"shmCreate", ShmCreate},
      {"shmAttach", ShmAttach},
      {"shmDescriptor", ShmDescriptor},
      {"shmRank", ShmRank},
      {"shmAllReduce", ShmAllReduce},
      {"shmAllReduceAsync", ShmAllReduceAsync},
      {"shmBroadcast", ShmBroadcast},
      {"shmBroadcastAsync", ShmBroadcastAsync},
      {"shmBumpEpoch", ShmBumpEpoch},
      {"shmEpoch", ShmEpoch},
      {"shmStats", ShmStats},
      {"shmClose", ShmClose},
      {"linkCreate", LinkCreate},
      {"linkPut", LinkPut},
      {"linkAbort", LinkAbort},
      {"linkGeneration", LinkGeneration},
      {"linkStats", LinkStats},
      {"linkClose", LinkClose},
      {"linkAllReduceAsync", LinkAllReduceAsync},
  };
  for (const Entry& e : entries) exports.Set(e.name, Napi::Function::New(env, e.fn, e.name));
}

}  // namespace troupe
