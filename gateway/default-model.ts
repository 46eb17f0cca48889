// The model `troupe serve` runs when given none: the generated `tiny` preset
// (random weights, the real Llama 3.1 tokenizer and chat template, a few MB),
// made on first use in the user's cache directory so that `npx troupe serve`
// works on a fresh machine right after `npm install`:
//
//   $XDG_CACHE_HOME/troupe/models/tiny-seed1-bf16    (default ~/.cache/...)
//
// It is written to a temporary sibling and renamed into place, so an
// interrupted or concurrent first run never leaves a half-written model.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateModel } from '../models/generator.js';

export const DEFAULT_MODEL = {
  preset: 'tiny',
  seed: 1,
  dtype: 'bf16' as const,
  servedName: 'troupe-tiny',
  /** Engine settings it is served with unless flags say otherwise: 64 sequences of 8192 tokens fit its 64 MiB of KV cache. */
  engine: { maxModelLen: 8192, kvCacheMemory: '64MiB' },
};

/** $XDG_CACHE_HOME/troupe, else ~/.cache/troupe. */
export function troupeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] && env['XDG_CACHE_HOME'].startsWith('/') ? env['XDG_CACHE_HOME'] : join(homedir(), '.cache');
  return join(base, 'troupe');
}

export function defaultModelDir(env: NodeJS.ProcessEnv = process.env): string {
  const { preset, seed, dtype } = DEFAULT_MODEL;
  return join(troupeCacheDir(env), 'models', `${preset}-seed${seed}-${dtype}`);
}

/** The default model's directory, generated first if missing; `created` says whether this call made it. */
export function ensureDefaultModel(env: NodeJS.ProcessEnv = process.env): { dir: string; created: boolean } {
  const dir = defaultModelDir(env);
  if (existsSync(join(dir, 'config.json'))) return { dir, created: false };
  mkdirSync(join(dir, '..'), { recursive: true });
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    generateModel({ preset: DEFAULT_MODEL.preset, seed: DEFAULT_MODEL.seed, out: partial, dtype: DEFAULT_MODEL.dtype });
    try {
      renameSync(partial, dir);
    } catch (error) {
      // another first run got there first: theirs is as good as ours
      if (!existsSync(join(dir, 'config.json'))) throw error;
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return { dir, created: true };
}
