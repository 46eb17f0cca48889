// The ISA names and CPU features the addons report (native/src/platform/isa.h,
// cpu_features.h): a file of their own, so that index.ts, model-raw.ts and
// probes.ts share them without importing each other.
export const ISAS = ['avx512bf16', 'avx512', 'avx2', 'neon-bf16', 'neon', 'scalar', 'amx'] as const;
/**
 * A kernel instruction-set path: the automatic ones best first in ISAS (a build has
 * its own architecture's paths and scalar), then the opt-in 'amx' (AMX tiles for the
 * bf16 GEMM: other bits than avx512bf16, chosen only by TROUPE_ISA=amx or an explicit isa).
 */
export type Isa = (typeof ISAS)[number];

/**
 * CPU features: x86-64 from cpuid, counted only when the OS enables their register state;
 * ARM64 (asimd, bf16) from what the OS reports (Linux HWCAP / HWCAP2, macOS sysctl).
 */
export interface CpuFeatures {
  avx2: boolean;
  fma: boolean;
  f16c: boolean;
  avx512f: boolean;
  avx512bw: boolean;
  avx512vl: boolean;
  avx512dq: boolean;
  avx512bf16: boolean;
  avx512vbmi: boolean;
  amx_tile: boolean;
  amx_bf16: boolean;
  asimd: boolean;
  bf16: boolean;
}
