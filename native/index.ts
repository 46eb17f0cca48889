// Loader for the main C++ addon, troupe_native.node (native/src/bindings over the
// shared core, built by `npm run build:native`; the tests' and benchmarks' entry
// points are the probes addon's: probes.ts).
//
// The addon is context-aware: every thread that calls loadNative() gets its
// own instance (main thread and each worker_thread alike). Within a thread the
// loaded module is cached per path.
//
// ISA selection: the best path the CPU supports ('avx512bf16' > 'avx512' >
// 'avx2' on x86-64, 'neon-bf16' > 'neon' on ARM64, then 'scalar'), unless TROUPE_ISA names one (read once, at the first
// load in a thread). Forcing a path the CPU cannot run makes loadNative()
// throw, naming the path and what the CPU has. Each kernel call may also name
// its ISA explicitly, so one process can exercise every path.
//
// Feature cap: TROUPE_CPU_FEATURES=avx2,fma,f16c makes the addon treat every
// feature not named as absent (detection, availableIsas, dispatch, the default
// ISA), so an AVX-512 machine runs exactly as an AVX2-only one would. The addon
// reads it from the process environment when it loads; a name it does not
// know makes loadNative() throw.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RAW_COLLECTIVE_EXPORTS, pickCollectives, type RawCollectives } from './collectives-raw.js';
import type { CpuFeatures, Isa } from './isa.js';
import { RAW_MODEL_EXPORTS, pickModelExports, type RawModelExports } from './model-raw.js';

export { ISAS, type CpuFeatures, type Isa } from './isa.js';

export const CPU_FEATURE_CAP_VAR = 'TROUPE_CPU_FEATURES';

export interface NativeAddon {
  /** What kernels may use: what this CPU (and OS) support, capped by TROUPE_CPU_FEATURES. */
  cpuFeatures(): CpuFeatures;
  /** What this CPU (and OS) support, before the cap. */
  detectedCpuFeatures(): CpuFeatures;
  /** The cap's feature names when TROUPE_CPU_FEATURES is set, else null. */
  cpuFeatureCap(): string[] | null;
  /** The ISA kernels use when a call names none: TROUPE_ISA, else the best available. */
  selectedIsa(): Isa;
  /** Every ISA this CPU can run, best first, then the opt-in ones ('scalar' is always there). */
  availableIsas(): Isa[];
  /** Raw shared-memory collective functions; use native/collectives.ts (CollectiveGroup, CollectiveRank). */
  readonly collectives: RawCollectives;
  /** Raw model functions; use models/ (LlamaModel). The kernels on their own are in native/probes.ts. */
  readonly model: RawModelExports;
}

/** The addon binary is missing, or present but unloadable / outdated. */
export class NativeAddonError extends Error {
  override readonly name = 'NativeAddonError';
  readonly addonPath: string;
  constructor(message: string, addonPath: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.addonPath = addonPath;
  }
}

export interface LoadNativeOptions {
  /** Load this .node file instead of the default build output (tests use it). */
  path?: string;
}

/** What the binary itself exports (addon.cc). */
interface RawAddon extends RawCollectives, RawModelExports {
  cpuFeatures(): CpuFeatures;
  detectedCpuFeatures(): CpuFeatures;
  availableIsas(): Isa[];
  bestIsa(): Isa;
  resolveIsa(name: string | undefined, label: string): Isa;
}
const RAW_EXPORTS: readonly (keyof RawAddon)[] = ['cpuFeatures', 'detectedCpuFeatures', 'availableIsas', 'bestIsa', 'resolveIsa', ...RAW_COLLECTIVE_EXPORTS, ...RAW_MODEL_EXPORTS];

const ADDON_FILE = join('native', 'build', 'Release', 'troupe_native.node');
const REBUILD_HINT = 'Rebuild it with `npm run build:native` (or `npm install`).';

/**
 * Where the build puts the addon. This file runs compiled as dist/native/index.js
 * (addon at ../../native/build/...), or as native/index.* straight from source
 * (addon at ./build/...); the first candidate that exists wins. TROUPE_NATIVE_ADDON
 * names another file instead (the cross-built ARM64 addon of scripts/test-arm64.sh).
 */
export function defaultAddonPath(): string {
  const override = process.env.TROUPE_NATIVE_ADDON;
  if (override) return resolve(override);
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '..', '..', ADDON_FILE), resolve(here, '..', ADDON_FILE)];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

const cache = new Map<string, NativeAddon>();
const requireAddon = createRequire(import.meta.url);

/** Loads (once per thread and path) and returns the native addon. */
export function loadNative(options: LoadNativeOptions = {}): NativeAddon {
  const addonPath = resolve(options.path ?? defaultAddonPath());
  const cached = cache.get(addonPath);
  if (cached) return cached;
  const addon = wrap(loadRaw(addonPath));
  cache.set(addonPath, addon);
  return addon;
}

function loadRaw(addonPath: string): RawAddon {
  if (!existsSync(addonPath)) {
    throw new NativeAddonError(`Troupe native addon is missing: no file at ${addonPath}. ${REBUILD_HINT}`, addonPath);
  }
  let raw: Partial<RawAddon>;
  try {
    raw = requireAddon(addonPath) as Partial<RawAddon>;
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new NativeAddonError(`Troupe native addon at ${addonPath} is broken and failed to load: ${detail}. ${REBUILD_HINT}`, addonPath, err);
  }
  const missing = RAW_EXPORTS.filter((name) => typeof raw[name] !== 'function');
  if (missing.length > 0) {
    throw new NativeAddonError(
      `Troupe native addon at ${addonPath} is outdated or broken: it does not export ${missing.join(', ')}. ${REBUILD_HINT}`,
      addonPath,
    );
  }
  return raw as RawAddon;
}

/** TROUPE_CPU_FEATURES's names (null when unset or empty); throws on a name the addon does not know. */
function checkedFeatureCap(raw: RawAddon): string[] | null {
  const value = process.env[CPU_FEATURE_CAP_VAR];
  if (value === undefined || value.trim() === '') return null;
  const known = Object.keys(raw.detectedCpuFeatures());
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = names.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new RangeError(`${CPU_FEATURE_CAP_VAR} names unknown CPU feature(s) ${unknown.map((n) => `'${n}'`).join(', ')} (known: ${known.join(', ')})`);
  }
  return names;
}

/** Picks the default ISA; an ISA the capped CPU cannot run is an error that names the cap. */
function selectIsa(raw: RawAddon, cap: string[] | null): Isa {
  try {
    return raw.resolveIsa(process.env.TROUPE_ISA, 'TROUPE_ISA');
  } catch (err) {
    if (cap === null || !(err instanceof Error)) throw err;
    throw new Error(`${err.message} [features capped by ${CPU_FEATURE_CAP_VAR}=${cap.join(',')}]`, { cause: err });
  }
}

function wrap(raw: RawAddon): NativeAddon {
  const cap = checkedFeatureCap(raw);
  // Throws (naming the ISA and the CPU's features) when TROUPE_ISA asks for a path this CPU lacks.
  const selected = selectIsa(raw, cap);
  return {
    cpuFeatures: () => raw.cpuFeatures(),
    detectedCpuFeatures: () => raw.detectedCpuFeatures(),
    cpuFeatureCap: () => (cap === null ? null : [...cap]),
    selectedIsa: () => selected,
    availableIsas: () => raw.availableIsas(),
    collectives: pickCollectives(raw),
    model: pickModelExports(raw),
  };
}
