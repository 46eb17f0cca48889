// This machine's limits, measured the way DESIGN.md defines them, for the
// benchmarks to print beside their figures:
//   read bandwidth: read-only sum over >= 2 GiB of anonymous memory, every
//     thread reading its share as 8 interleaved streams, all threads at once;
//   bf16 peak: a register-only loop of bf16 dot-product instructions
//     (vdpbf16ps on x86-64, BFDOT on ARM64; fp32 FMA where the CPU lacks
//     bf16 dot instructions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cpu_features.h"
#include "random_fill.h"

namespace troupe {

// Bytes per second, the best of `passes` passes over `bytes`.
double measure_read_bandwidth(size_t bytes, size_t threads, size_t passes, const CpuFeatures& cpu);

struct PeakResult {
  double flops;             // per second, all threads
  std::string instruction;  // what was measured
};
PeakResult measure_bf16_peak(size_t threads, double seconds, const CpuFeatures& cpu);

// The ISA loops (src/kernels/limits_avx512bf16.cc; baseline fallbacks in machine_limits.cc).
#if defined(TROUPE_X86)
uint64_t read_streams_avx512(const uint8_t* const* streams, size_t bytes_per_stream);
// Runs `iters` iterations of 16 independent vdpbf16ps; returns a value to keep it alive.
float bf16_dot_loop_avx512bf16(size_t iters);
constexpr double kBf16DotFlopsPerIter = 16.0 * 64.0;  // 16 instructions x 16 lanes x 2 pairs x 2 flops
float fma_loop_avx2(size_t iters);
constexpr double kFmaFlopsPerIter = 16.0 * 16.0;  // 16 vfmadd231ps ymm x 8 lanes x 2 flops
#endif
#if defined(TROUPE_ARM64)
// src/kernels/limits_neon.cc (baseline) and limits_neon_bf16.cc (FEAT_BF16).
uint64_t read_streams_neon(const uint8_t* const* streams, size_t bytes_per_stream);
float fma_loop_neon(size_t iters);  // 16 independent FMLA .4s per iteration
float bf16_dot_loop_neon_bf16(size_t iters);  // 16 independent BFDOT .4s per iteration
constexpr double kNeonFmaFlopsPerIter = 16.0 * 8.0;        // 16 x 4 lanes x 2 flops
constexpr double kNeonBf16DotFlopsPerIter = 16.0 * 16.0;   // 16 x 4 lanes x 2 pairs x 2 flops
#endif

}  // namespace troupe
