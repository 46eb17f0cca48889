// Loader for the probes addon (native/src/probes, built into troupe_probes.node
// beside troupe_native.node by the same `npm run build:native`): the kernels, the
// sampler and the machine limits on their own, for tests and benchmarks. `troupe
// serve` never loads it. Like the main addon it is context-aware (one instance per
// thread) and sees the CPU capped by TROUPE_CPU_FEATURES; an `isa` left undefined
// means the best ISA of that CPU, not TROUPE_ISA (pass loadNative().selectedIsa()).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { NativeAddonError, defaultAddonPath } from './index.js';
import type { Isa } from './isa.js';
import type { NativeModelHandle, SamplingArrays } from './model-raw.js';

/** One compute-peak probe (native/src/probes/machine_limits.h). */
export interface PeakProbe {
  isa: Isa;
  /** FLOP/s, all threads (0 when the probe cannot run). */
  flops: number;
  instruction: string;
  kind: 'fp32 scalar' | 'fp32 fma' | 'bf16 dot' | 'amx bf16' | 'none';
}

/** The KV layout argument of the attention and KV kernels (native/src/model/kv_layout.h). */
export interface KvLayoutArgs {
  numBlocks: number;
  blockSize: number;
  kvHeads: number;
  headDim: number;
  bf16: boolean;
  /** FP8 cache (kv is then a Uint8Array of codes of value / scale). */
  fp8?: 'e4m3' | 'e5m2';
  kScale?: number;
  vScale?: number;
}

/** A vocab tile's log-sum-exp state: max and the fp64 sum of exp(l - max). */
export interface TileLse {
  max: number;
  sum: number;
}

export interface Probes {
  /** One ModelKernels entry on one ISA path (native/src/probes/kernel_binding.cc names them and their args). */
  modelKernel(name: string, isa: Isa | undefined, args: object): number | boolean | TileLse | undefined;
  sampleLogits(
    logits: Float32Array,
    V: number,
    sampling: SamplingArrays,
    /** summaries: sample through the lm head's tile summaries as the model does (default true), or from the raw rows alone. */
    options?: { summaries?: boolean },
  ): {
    tokens: Int32Array;
    logprobs: Float32Array;
    topN: number;
    topIds: Int32Array;
    topLogprobs: Float32Array;
    /** Rows whose top-p nucleus came from the lm head's tile records (native/src/sampling/sampling.h), not a scan of the row. */
    nucleusFromRecords: number;
  };
  /** The sampler's random number in [0, 1) for (seed, index). */
  counterUniform(seed: number, index: number): number;
  /**
   * The FP8 GEMM (native/src/kernels/fp8/gemm_fp8_impl.h): out[m, n] for n in [n0, n1) (default all) =
   * sum over `segments` K ranges of fp32(P_s * fp32(xs[m] * ws[n])). xq holds bf16 bits of e4m3
   * values. Returns the kernel's name. kernel 'table': the ISA's table-conversion kernel
   * (the same bits; tests compare the two).
   */
  fp8Gemm(
    isa: Isa | undefined,
    args: { w: Uint8Array; ws: Float32Array; xq: Uint16Array; xs: Float32Array; out: Float32Array; M: number; N: number; K: number; segments: number; n0?: number; n1?: number; kernel?: 'auto' | 'table'; packedX?: boolean },
  ): string;
  /** The model's per-token activation quantizer (static when staticScale > 0, else dynamic clamped by ub). */
  fp8QuantizeActivations(args: { x: Float32Array; xq: Uint16Array; xs: Float32Array; M: number; K: number; ub?: number; staticScale?: number; isa?: Isa }): void;
  /** Read bandwidth in bytes per second, the best of `passes` passes over `bytes` (native/src/probes/machine_limits.h). */
  measureReadBandwidth(bytes: number, threads: number, passes: number): number;
  /** The compute peak of `isa`'s prefill arithmetic (native/src/probes/machine_limits.h), all threads. */
  measurePeak(isa: Isa | undefined, threads: number, seconds: number): PeakProbe;
  /** Times the model's GEMM driver on bf16 weights: per rep, seconds per matrix (bench/gemm.bench.ts). */
  gemmBench(args: { isa?: Isa; threads: number; M: number; N: number; K: number; segments?: number; copies?: number; reps?: number }): { seconds: number[] };
  /** Times the step's lm-head log-sum-exp and sampling phases over rows of logits (bench/sampling.bench.ts). */
  sampleBench(logits: Float32Array, V: number, sampling: SamplingArrays, options: { isa?: Isa; threads: number; reps?: number }): { lseMs: number[]; sampleMs: number[]; tokens: Int32Array; nucleusFromRecords: number };
  /**
   * out[m, n] = sum_k bf16(x[m, k]) * w[n, k], accumulated in fp32.
   *   w   [N, K] row-major bf16 bits (Uint16Array, N*K elements)
   *   x   [M, K] row-major fp32, rounded to bf16 (nearest-even) inside
   *   out [M, N] row-major fp32, overwritten; may alias x, must not overlap w
   * Row m of out depends only on row m of x (bitwise, for every M) within one ISA.
   * Throws TypeError / RangeError on bad arguments, Error for an ISA the CPU lacks.
   * isa undefined: the best ISA of the (capped) CPU.
   */
  matmulBf16(w: Uint16Array, x: Float32Array, out: Float32Array, M: number, N: number, K: number, isa?: Isa): void;
  /**
   * Sets every KV page of a model the main addon made to seeded uniform values in [-scale, scale)
   * (FP8 caches: their codes), so a benchmark decodes at a long context without its prefill.
   * Not while a step runs (LlamaModel.betweenSteps).
   */
  modelFillKv(handle: NativeModelHandle, seed: number, scale: number): void;
}

const PROBE_EXPORTS: readonly (keyof Probes)[] = [
  'modelKernel',
  'sampleLogits',
  'counterUniform',
  'fp8Gemm',
  'fp8QuantizeActivations',
  'measureReadBandwidth',
  'measurePeak',
  'gemmBench',
  'sampleBench',
  'matmulBf16',
  'modelFillKv',
];

/**
 * troupe_probes.node next to the main addon (defaultAddonPath(), which follows
 * TROUPE_NATIVE_ADDON), unless TROUPE_PROBES_ADDON names another file.
 */
function defaultProbesPath(): string {
  const override = process.env.TROUPE_PROBES_ADDON;
  if (override) return resolve(override);
  return join(dirname(defaultAddonPath()), 'troupe_probes.node');
}

const cache = new Map<string, Probes>();
const requireAddon = createRequire(import.meta.url);

/** Loads (once per thread and path) and returns the probes addon. */
export function loadProbes(): Probes {
  const path = defaultProbesPath();
  const cached = cache.get(path);
  if (cached) return cached;
  const hint = 'Rebuild it with `npm run build:native` (or `npm install`).';
  if (!existsSync(path)) throw new NativeAddonError(`Troupe probes addon is missing: no file at ${path}. ${hint}`, path);
  let raw: Partial<Probes>;
  try {
    raw = requireAddon(path) as Partial<Probes>;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new NativeAddonError(`Troupe probes addon at ${path} is broken and failed to load: ${detail}. ${hint}`, path, err);
  }
  const missing = PROBE_EXPORTS.filter((name) => typeof raw[name] !== 'function');
  if (missing.length > 0) throw new NativeAddonError(`Troupe probes addon at ${path} is outdated or broken: it does not export ${missing.join(', ')}. ${hint}`, path);
  const picked = {} as Record<string, unknown>;
  for (const name of PROBE_EXPORTS) picked[name] = (raw[name] as (...args: unknown[]) => unknown).bind(raw);
  const probes = picked as unknown as Probes;
  cache.set(path, probes);
  return probes;
}
