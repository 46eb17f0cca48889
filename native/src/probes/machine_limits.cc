#include "probes/machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "platform/amx_permission.h"
#include "model/model.h"

namespace troupe {
namespace {

constexpr size_t kStreams = 8;

[[maybe_unused]] uint64_t read_streams_scalar(const uint8_t* const* streams, size_t bytes_per_stream) {
  uint64_t acc[kStreams] = {};
  for (size_t off = 0; off + 8 <= bytes_per_stream; off += 8)
    for (size_t s = 0; s < kStreams; ++s) {
      uint64_t v;
      std::memcpy(&v, streams[s] + off, 8);
      acc[s] += v;
    }
  uint64_t r = 0;
  for (uint64_t a : acc) r ^= a;
  return r;
}

// 8 independent fp32 multiply-adds per iteration (-ffp-contract=off: never fused).
float scalar_loop(size_t iters) {
  float acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = static_cast<float>(i);
  volatile float va = 1.0f, vb = 1e-7f;
  const float a = va, b = vb;
  for (size_t it = 0; it < iters; ++it)
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * a + b;
  float s = 0;
  for (float v : acc) s += v;
  return s;
}
constexpr double kScalarFlopsPerIter = 16.0;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

double measure_read_bandwidth(size_t bytes, size_t threads, size_t passes, const CpuFeatures& cpu) {
  if (threads == 0) threads = 1;
  const size_t per_stream = (bytes / (threads * kStreams)) / 4096 * 4096;
  const size_t total = per_stream * threads * kStreams;
  uint8_t* mem = static_cast<uint8_t*>(alloc_anonymous(total));
  for (size_t i = 0; i < total; i += 4096) mem[i] = static_cast<uint8_t>(i >> 12);  // fault pages in
  const bool wide = isa_supported(Isa::Avx512, cpu), avx2 = isa_supported(Isa::Avx2, cpu);
  double best = 0;
  std::atomic<uint64_t> sink{0};
  for (size_t pass = 0; pass < std::max<size_t>(passes, 1); ++pass) {
    std::atomic<size_t> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    double start = 0;
    for (size_t t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const uint8_t* streams[kStreams];
        for (size_t s = 0; s < kStreams; ++s) streams[s] = mem + (t * kStreams + s) * per_stream;
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
#if defined(TROUPE_X86)
        const uint64_t r = wide   ? read_streams_avx512(streams, per_stream)
                           : avx2 ? read_streams_avx2(streams, per_stream)
                                  : read_streams_scalar(streams, per_stream);
#elif defined(TROUPE_ARM64)
        const uint64_t r = read_streams_neon(streams, per_stream);
#else
        const uint64_t r = read_streams_scalar(streams, per_stream);
#endif
        sink.fetch_xor(r);
      });
    while (ready.load() < threads) std::this_thread::yield();
    start = now_seconds();
    go.store(true, std::memory_order_release);
    for (std::thread& th : pool) th.join();
    best = std::max(best, static_cast<double>(total) / (now_seconds() - start));
  }
  free_anonymous(mem, total);
  (void)wide;
  (void)avx2;
  return best;
}

PeakResult measure_peak(Isa isa, size_t threads, double seconds, const CpuFeatures& cpu) {
  if (threads == 0) threads = 1;
  if (!isa_supported(isa, cpu)) return {0.0, std::string("none (the CPU cannot run ") + isa_name(isa) + ")", "none"};
  float (*loop)(size_t) = &scalar_loop;
  double per_iter = kScalarFlopsPerIter;
  size_t iters = 1 << 20;
  PeakResult r{0.0, "mulss + addss (fp32 scalar)", "fp32 scalar"};
#if defined(TROUPE_X86)
  switch (isa) {
    case Isa::Avx2:
      loop = &fma_loop_avx2, per_iter = kFmaAvx2FlopsPerIter;
      r.instruction = "vfmadd231ps ymm (fp32 FMA)", r.kind = "fp32 fma";
      break;
    case Isa::Avx512:
      loop = &fma_loop_avx512, per_iter = kFmaAvx512FlopsPerIter;
      r.instruction = "vfmadd231ps zmm (fp32 FMA)", r.kind = "fp32 fma";
      break;
    case Isa::Avx512Bf16:
      loop = &bf16_dot_loop_avx512bf16, per_iter = kBf16DotFlopsPerIter;
      r.instruction = "vdpbf16ps zmm (AVX-512 BF16)", r.kind = "bf16 dot";
      break;
    case Isa::Amx:
      if (!amx_request_permission()) return {0.0, "none (the OS denied the AMX tile permission)", "none"};
      loop = &amx_bf16_loop, per_iter = kAmxFlopsPerIter, iters = 1 << 16;
      r.instruction = "tdpbf16ps, 2 x 2 tiles (AMX-BF16)", r.kind = "amx bf16";
      break;
    default: break;
  }
#elif defined(TROUPE_ARM64)
  switch (isa) {
    case Isa::Neon:
      loop = &fma_loop_neon, per_iter = kNeonFmaFlopsPerIter;
      r.instruction = "fmla .4s (fp32 FMA)", r.kind = "fp32 fma";
      break;
    case Isa::NeonBf16:
      loop = &bf16_dot_loop_neon_bf16, per_iter = kNeonBf16DotFlopsPerIter;
      r.instruction = "bfdot .4s (ARM64 FEAT_BF16)", r.kind = "bf16 dot";
      break;
    default: break;
  }
#endif
  std::atomic<double> flops_total{0};
  std::vector<std::thread> pool;
  std::atomic<float> sink{0};
  const double t0 = now_seconds();
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      size_t n = 0;
      float keep = 0;
      while (now_seconds() - t0 < seconds) {
        keep += loop(iters);
        ++n;
      }
      sink.store(keep);
      double cur = flops_total.load();
      while (!flops_total.compare_exchange_weak(cur, cur + static_cast<double>(n) * iters * per_iter)) {
      }
    });
  for (std::thread& th : pool) th.join();
  r.flops = flops_total.load() / (now_seconds() - t0);
  return r;
}

}  // namespace troupe
