// Why uWebSockets.js could not load, in words: its prebuilt binaries are one
// per Node ABI (uws_<platform>_<arch>_<abi>.node), and each needs a minimum
// glibc (the GLIBC_2.x symbol versions it references). The usual failure is a
// binary that needs a newer glibc than the system has (uWS 3.0.6's builds for
// Node 22 / 24 need 2.38; Debian 12 has 2.36); the other one is a Node whose
// ABI has no build at all. A plain function of what was probed, so tests can
// feed it any system.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Node major version of each ABI (process.versions.modules) uWS ships builds for. */
const NODE_OF_ABI: Record<number, number> = { 83: 14, 88: 15, 93: 16, 102: 17, 108: 18, 111: 19, 115: 20, 120: 21, 127: 22, 131: 23, 137: 24, 141: 25 };

interface UwsBinary {
  abi: number;
  /** Highest GLIBC_2.x version it references, e.g. "2.38" (null: none found, or not a Linux binary). */
  glibc: string | null;
}

export interface UwsProbe {
  platform: string;
  arch: string;
  /** process.versions.modules */
  abi: number;
  nodeVersion: string;
  /** glibc of this system (null: none, e.g. musl). */
  glibc: string | null;
  /** The binaries for this platform and arch. */
  binaries: UwsBinary[];
}

export class UwsLoadError extends Error {
  override readonly name = 'UwsLoadError';
}

function compareVersions(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
}

const nodeName = (abi: number) => (NODE_OF_ABI[abi] !== undefined ? `Node ${NODE_OF_ABI[abi]}` : `Node ABI ${abi}`);

/** The sentence `troupe serve` prints instead of a stack trace. `loaderMessage`: what the loader threw. */
export function explainUwsFailure(probe: UwsProbe, loaderMessage: string): string {
  const file = `uws_${probe.platform}_${probe.arch}_${probe.abi}.node`;
  const mine = probe.binaries.find((b) => b.abi === probe.abi);
  const loadable = probe.binaries
    .filter((b) => probe.glibc === null || b.glibc === null || compareVersions(b.glibc, probe.glibc) <= 0)
    .map((b) => b.abi)
    .filter((abi) => NODE_OF_ABI[abi] !== undefined && NODE_OF_ABI[abi]! >= 20)
    .sort((a, b) => a - b);
  const works = loadable.length ? `Node versions whose uWS build loads here: ${loadable.map(nodeName).join(', ')}` : 'no uWS build for Node 20 or later loads on this system';
  const glibcMissing = /GLIBC_(\d+\.\d+)' not found/.exec(loaderMessage);
  if (mine && (glibcMissing || (mine.glibc && probe.glibc && compareVersions(mine.glibc, probe.glibc) > 0))) {
    const needed = glibcMissing?.[1] ?? mine.glibc!;
    return `uWebSockets.js cannot load: its build for ${nodeName(probe.abi)} (this is Node ${probe.nodeVersion}, ${file}) needs glibc ${needed}, ` +
      `and this system has glibc ${probe.glibc ?? 'none'}. ${works}. ` +
      `Run troupe with one of those, or on a system with glibc >= ${needed} (Debian 13, Ubuntu 24.04, Fedora 40 or later).`;
  }
  if (!mine) {
    return `uWebSockets.js has no build for Node ${probe.nodeVersion} (ABI ${probe.abi}) on ${probe.platform}-${probe.arch} (no ${file}). ${works}.`;
  }
  return `uWebSockets.js (${file}) failed to load on Node ${probe.nodeVersion}: ${loaderMessage.split('\n').filter(Boolean).at(-1) ?? loaderMessage}. ${works}.`;
}

/** This system, as explainUwsFailure wants it; `packageDir` is uWebSockets.js's folder. */
export function probeSystem(packageDir: string): UwsProbe {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const prefix = `uws_${process.platform}_${process.arch}_`;
  let files: string[] = [];
  try {
    files = readdirSync(packageDir).filter((f) => f.startsWith(prefix) && f.endsWith('.node'));
  } catch {
    // no package folder: no binaries
  }
  return {
    platform: process.platform,
    arch: process.arch,
    abi: Number(process.versions.modules),
    nodeVersion: process.versions.node,
    glibc: header?.glibcVersionRuntime ?? null,
    binaries: files.map((f) => ({ abi: Number(f.slice(prefix.length, -'.node'.length)), glibc: highestGlibc(join(packageDir, f)) })),
  };
}

/** The highest GLIBC_2.x version string in a binary (its dynamic string table names the versions it needs). */
export function highestGlibc(file: string): string | null {
  let best: string | null = null;
  const text = readFileSync(file).toString('latin1');
  for (const match of text.matchAll(/GLIBC_(2\.\d+)/g)) if (best === null || compareVersions(match[1]!, best) > 0) best = match[1]!;
  return best;
}

export function packageDirOf(resolvedMain: string): string {
  return dirname(resolvedMain);
}
