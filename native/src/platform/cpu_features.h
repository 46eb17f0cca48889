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
  bool avx512vbmi = false;  // byte permutes: the in-register FP8 conversion of the avx512bf16 path
  // AMX: the CPU has the tiles / the bf16 tile product and the OS enables their state in
  // XCR0 (TILECFG, TILEDATA). Linux also wants a per-process permission before the first
  // tile instruction (amx_permission.h).
  bool amx_tile = false;
  bool amx_bf16 = false;
  // ARM64
  bool asimd = false;  // Advanced SIMD (NEON) with fp32 FMA: HWCAP_ASIMD, hw.optional.AdvSIMD
  bool bf16 = false;   // FEAT_BF16 (BFDOT, BFMMLA): HWCAP2_BF16, hw.optional.arm.FEAT_BF16
};

// Queries the CPU. Pure (no caching, no globals): callers keep the result.
CpuFeatures detect_cpu_features();

// The environment variable that caps the features a process may use.
constexpr const char* kCpuFeatureCapVar = "TROUPE_CPU_FEATURES";

// `detected` with every feature that the comma-separated list `cap` does not
// name turned off (names as in kCpuFeatureFields; blanks around names are
// ignored; unknown names are ignored here, the JS loader rejects them). A cap
// never turns a feature on, so whatever the cap, a selected kernel can run.
CpuFeatures cap_cpu_features(const CpuFeatures& detected, const char* cap);

// What this process may use: detected, capped by TROUPE_CPU_FEATURES when it is
// set and non-empty (so an AVX-512 machine can run exactly as an AVX2-only one).
CpuFeatures usable_cpu_features(const CpuFeatures& detected);

// Flags by name, in a fixed order, for messages and for JS.
struct CpuFeatureField {
  const char* name;
  bool CpuFeatures::*flag;
};
extern const CpuFeatureField kCpuFeatureFields[];
extern const int kCpuFeatureFieldCount;

}  // namespace troupe
