// This machine's limits, measured the way DESIGN.md defines them, for the
// benchmarks to print beside their figures:
//   read bandwidth: read-only sum over >= 2 GiB of anonymous memory, every
//     thread reading its share as 8 interleaved streams, all threads at once
//     (512-bit loads where the CPU has AVX-512, 256-bit on AVX2, 128-bit NEON on
//     ARM64, 64-bit else);
//   compute peak of an ISA's prefill arithmetic: a register-only loop of the
//     instruction its GEMM is made of, on all threads at once:
//       scalar      fp32 multiply and add (scalar SSE)
//       avx2        vfmadd231ps ymm          (fp32 FMA)
//       avx512      vfmadd231ps zmm          (fp32 FMA)
//       avx512bf16  vdpbf16ps zmm            (bf16 dot)
//       amx         tdpbf16ps, 2 x 2 tiles   (AMX bf16)
//       neon        fmla .4s                 (fp32 FMA)
//       neon-bf16   bfdot .4s                (bf16 dot)
// Each probe runs only code the ISA's own kernels may run, so every probe an
// ISA's benchmark needs runs wherever that ISA does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "platform/cpu_features.h"
#include "platform/isa.h"
#include "model/random_fill.h"

namespace troupe {

// Bytes per second, the best of `passes` passes over `bytes`.
double measure_read_bandwidth(size_t bytes, size_t threads, size_t passes, const CpuFeatures& cpu);

struct PeakResult {
  double flops;             // per second, all threads (0 when the probe cannot run)
  std::string instruction;  // what was measured
  std::string kind;         // "fp32 scalar" | "fp32 fma" | "bf16 dot" | "amx bf16" | "none"
};
// The compute peak of `isa`'s arithmetic (the table above); `isa` must be supported.
PeakResult measure_peak(Isa isa, size_t threads, double seconds, const CpuFeatures& cpu);

// The ISA loops (limits_<isa>.cc; the scalar ones in machine_limits.cc).
// Each returns a value that keeps its work alive.
#if defined(TROUPE_X86)
uint64_t read_streams_avx2(const uint8_t* const* streams, size_t bytes_per_stream);
uint64_t read_streams_avx512(const uint8_t* const* streams, size_t bytes_per_stream);
float fma_loop_avx2(size_t iters);
constexpr double kFmaAvx2FlopsPerIter = 12.0 * 16.0;  // 12 vfmadd231ps ymm x 8 lanes x 2 flops
float fma_loop_avx512(size_t iters);
constexpr double kFmaAvx512FlopsPerIter = 16.0 * 32.0;  // 16 vfmadd231ps zmm x 16 lanes x 2 flops
// 16 independent vdpbf16ps zmm per iteration.
float bf16_dot_loop_avx512bf16(size_t iters);
constexpr double kBf16DotFlopsPerIter = 16.0 * 64.0;  // 16 instructions x 16 lanes x 2 pairs x 2 flops
// 4 tdpbf16ps (16 x 16 outputs, 32 K each) per iteration.
float amx_bf16_loop(size_t iters);
constexpr double kAmxFlopsPerIter = 4.0 * 16 * 16 * 32 * 2;
#endif
#if defined(TROUPE_ARM64)
// limits_neon.cc (baseline) and limits_neon_bf16.cc (FEAT_BF16).
uint64_t read_streams_neon(const uint8_t* const* streams, size_t bytes_per_stream);
float fma_loop_neon(size_t iters);  // 16 independent FMLA .4s per iteration
float bf16_dot_loop_neon_bf16(size_t iters);  // 16 independent BFDOT .4s per iteration
constexpr double kNeonFmaFlopsPerIter = 16.0 * 8.0;        // 16 x 4 lanes x 2 flops
constexpr double kNeonBf16DotFlopsPerIter = 16.0 * 16.0;   // 16 x 4 lanes x 2 pairs x 2 flops
#endif

}  // namespace troupe
