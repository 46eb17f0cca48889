// Shared helpers for model tests: generated models (cached per process),
// the golden fixture, and driving a LlamaModel over whole prompts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SequenceResult, SequenceStep } from '../../models/batch.js';
import { generateModel, type GeneratedDtype, type GenerateOptions } from '../../models/generator.js';
import type { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';

/** test/fixtures/golden-tiny (compiled tests run from dist-test/test/models). */
export const GOLDEN_DIR = fileURLToPath(new URL('../../../test/fixtures/golden-tiny', import.meta.url));

export interface GoldenCase {
  name: string;
  tokens: number[];
  logprobs_from_position: number;
  logprobs: number[];
  last_top5_ids: number[];
  last_top5_logprobs: number[];
  greedy_next_16: number[];
}
export interface Golden {
  cases: GoldenCase[];
  llama3_rope_inv_freq: { head_dim_128_factor_8: number[]; head_dim_64_factor_32: number[] };
}
export function loadGolden(): Golden {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, 'golden.json'), 'utf8')) as Golden;
}

const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
/** A fresh temporary directory, removed when this test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `troupe-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

const generated = new Map<string, string>();
/** A generated model directory (one per preset / seed / dtype / layers in this process). */
export function generatedModel(preset: string, seed = 1, dtype: GeneratedDtype = 'bf16', extra: Pick<GenerateOptions, 'layers' | 'maxShardBytes' | 'shape'> = {}): string {
  const key = JSON.stringify([preset, seed, dtype, extra]);
  let dir = generated.get(key);
  if (!dir) {
    dir = tempDir(preset);
    generateModel({ preset, seed, out: dir, dtype, ...extra });
    generated.set(key, dir);
  }
  return dir;
}

/** Seeded token ids in [0, vocab). */
export function randomTokens(n: number, vocab: number, seed: number): number[] {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

/** Teacher-forced log-probabilities of tokens[i + 1] after tokens[..i], run in chunks of `chunk`. */
export async function teacherForced(
  model: LlamaModel,
  tokens: number[],
  options: { chunk?: number; pages?: PageAllocator; topN?: number } = {},
): Promise<{ logprobs: Float32Array; last: SequenceResult }> {
  const pages = options.pages ?? new PageAllocator(model.kvCache.numBlocks);
  const table: number[] = [];
  const chunk = options.chunk ?? tokens.length;
  const logprobs = new Float32Array(tokens.length - 1);
  let last: SequenceResult = {};
  for (let start = 0; start < tokens.length; start += chunk) {
    const part = tokens.slice(start, start + chunk);
    pages.ensure(table, start + part.length, model.kvCache.blockSize);
    const targets = part.map((_, i) => tokens[start + i + 1] ?? -1);
    const isLast = start + chunk >= tokens.length;
    const step: SequenceStep = { tokens: part, cachedTokens: start, blockTable: table, promptLogprobs: { targets } };
    if (isLast) step.sample = { params: { temperature: 0, logprobs: options.topN ?? 5 }, seed: 0, outputIndex: 0 };
    const [r] = await model.step([step]);
    logprobs.set(r!.promptLogprobs!.subarray(0, Math.min(part.length, tokens.length - 1 - start)), start);
    if (isLast) last = r!;
  }
  pages.release(table);
  return { logprobs, last };
}

/** Greedy continuation of `count` tokens after a full prompt. */
export async function greedy(model: LlamaModel, prompt: number[], count: number): Promise<number[]> {
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const table = pages.ensure([], prompt.length + count, model.kvCache.blockSize);
  const out: number[] = [];
  let tokens = prompt;
  let cached = 0;
  for (let k = 0; k < count; k++) {
    const [r] = await model.step([{ tokens, cachedTokens: cached, blockTable: table, sample: { params: { temperature: 0 }, seed: 0, outputIndex: k } }]);
    cached += tokens.length;
    out.push(r!.token!);
    tokens = [r!.token!];
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
