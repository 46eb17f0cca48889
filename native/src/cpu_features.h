// CPU feature detection. x86-64: cpuid + xgetbv; a feature counts only when
// the CPU has it AND the OS saves the register state it needs (XCR0), so a
// kernel selected from these flags can always run. ARM64: what the OS reports
// to user space (Linux getauxval(AT_HWCAP / AT_HWCAP2), macOS sysctlbyname
// hw.optional.*), which already means the OS supports it.
#pragma once

namespace troupe {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512bf16 = false;
  // ARM64
  bool asimd = false;  // Advanced SIMD (NEON) with fp32 FMA: HWCAP_ASIMD, hw.optional.AdvSIMD
  bool bf16 = false;   // FEAT_BF16 (BFDOT, BFMMLA): HWCAP2_BF16, hw.optional.arm.FEAT_BF16
};

// Queries the CPU. Pure (no caching, no globals): callers keep the result.
CpuFeatures detect_cpu_features();

// Flags by name, in a fixed order, for messages and for JS.
struct CpuFeatureField {
  const char* name;
  bool CpuFeatures::*flag;
};
extern const CpuFeatureField kCpuFeatureFields[];
extern const int kCpuFeatureFieldCount;

}  // namespace troupe
