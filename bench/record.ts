// Benchmark records: every benchmark prints its figures and writes one JSON
// file under bench/results/ with the commit, the command and the figures.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';

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
  const record = {
    name,
    date: new Date().toISOString(),
    commit: commit(),
    command: process.argv.slice(1).join(' '),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    figures,
  };
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
  return file.pathname;
}
