// Benchmark records: every benchmark prints its figures and writes one JSON
// file under bench/results/ with the commit, the command, the ISA and CPU model
// and the figures.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { loadNative } from '../native/index.js';

const RESULTS = new URL('./results/', new URL('../../bench/', import.meta.url));

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** The CPU's model name as /proc/cpuinfo gives it (os.cpus() elsewhere). */
function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Writes bench/results/<name>-<timestamp>.json and returns its path. */
export function writeRecord(name: string, figures: unknown): string {
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = new URL(`${name}-${stamp}.json`, RESULTS);
  const native = loadNative();
  const record = {
    name,
    date: new Date().toISOString(),
    commit: commit(),
    command: process.argv.slice(1).join(' '),
    node: process.version,
    cpu: cpuModel(),
    cores: cpus().length,
    // The process's ISA (TROUPE_ISA or the best available) and what the CPU has.
    isa: native.selectedIsa(),
    cpuFeatures: Object.entries(native.cpuFeatures()).filter(([, has]) => has).map(([name]) => name),
    figures,
  };
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file.pathname;
}
