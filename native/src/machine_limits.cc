#include "machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "isa.h"
#include "model.h"

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
  const bool wide = isa_supported(Isa::Avx512, cpu);
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
        const uint64_t r = wide ? read_streams_avx512(streams, per_stream) : read_streams_scalar(streams, per_stream);
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
  return best;
}

PeakResult measure_bf16_peak(size_t threads, double seconds, const CpuFeatures& cpu) {
  if (threads == 0) threads = 1;
#if defined(TROUPE_X86)
  const bool bf16 = isa_supported(Isa::Avx512Bf16, cpu);
  const bool fma = isa_supported(Isa::Avx2, cpu);
  if (!bf16 && !fma) return {0.0, "none (no AVX2)"};
  const size_t iters = 1 << 20;
  const double per_iter = bf16 ? kBf16DotFlopsPerIter : kFmaFlopsPerIter;
  std::atomic<double> flops_total{0};
  std::vector<std::thread> pool;
  std::atomic<float> sink{0};
  const double t0 = now_seconds();
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      size_t n = 0;
      float keep = 0;
      while (now_seconds() - t0 < seconds) {
        keep += bf16 ? bf16_dot_loop_avx512bf16(iters) : fma_loop_avx2(iters);
        ++n;
      }
      sink.store(keep);
      double cur = flops_total.load();
      while (!flops_total.compare_exchange_weak(cur, cur + static_cast<double>(n) * iters * per_iter)) {
      }
    });
  for (std::thread& th : pool) th.join();
  const double elapsed = now_seconds() - t0;
  return {flops_total.load() / elapsed, bf16 ? "vdpbf16ps zmm (AVX-512 BF16)" : "vfmadd231ps ymm (fp32, no AVX-512 BF16)"};
#elif defined(TROUPE_ARM64)
  const bool bf16 = isa_supported(Isa::NeonBf16, cpu);
  if (!isa_supported(Isa::Neon, cpu)) return {0.0, "none (no Advanced SIMD)"};
  const size_t iters = 1 << 20;
  const double per_iter = bf16 ? kNeonBf16DotFlopsPerIter : kNeonFmaFlopsPerIter;
  std::atomic<double> flops_total{0};
  std::vector<std::thread> pool;
  std::atomic<float> sink{0};
  const double t0 = now_seconds();
  for (size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      size_t n = 0;
      float keep = 0;
      while (now_seconds() - t0 < seconds) {
        keep += bf16 ? bf16_dot_loop_neon_bf16(iters) : fma_loop_neon(iters);
        ++n;
      }
      sink.store(keep);
      double cur = flops_total.load();
      while (!flops_total.compare_exchange_weak(cur, cur + static_cast<double>(n) * iters * per_iter)) {
      }
    });
  for (std::thread& th : pool) th.join();
  const double elapsed = now_seconds() - t0;
  return {flops_total.load() / elapsed, bf16 ? "bfdot .4s (ARM64 FEAT_BF16)" : "fmla .4s (fp32, no FEAT_BF16)"};
#else
  (void)cpu;
  (void)seconds;
  return {0.0, "none (neither x86-64 nor ARM64)"};
#endif
}

}  // namespace troupe
