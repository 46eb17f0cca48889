// `troupe make-model`: the generator (generator.ts) behind a command line.
import { generateModel, type GeneratedDtype } from './generator.js';
import { presetNames } from './presets.js';

export interface MakeModelFlags {
  preset: string;
  seed: string;
  dtype: string;
  layers?: string;
  out: string;
  maxShardSize?: string;
}

/** "5GB", "500MB", "2GiB", "123" (bytes) -> bytes. */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KIB|MIB|GIB)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`not a size: '${text}' (e.g. 5GB, 500MB, 2GiB)`);
  const unit = (m[2] ?? 'B').toUpperCase();
  const mult: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };
  return Math.floor(Number(m[1]) * mult[unit]!);
}

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new RangeError(`${flag} must be a non-negative integer, got '${text}'`);
  return Number(text);
}

export function runMakeModel(flags: MakeModelFlags): void {
  const dtype = ({ bf16: 'bf16', bfloat16: 'bf16', fp16: 'fp16', float16: 'fp16', fp32: 'fp32', float32: 'fp32' } as Record<string, GeneratedDtype>)[flags.dtype];
  if (!dtype) throw new RangeError(`--dtype must be bf16, fp16 or fp32, got '${flags.dtype}'`);
  if (!presetNames().includes(flags.preset)) throw new RangeError(`--preset must be one of ${presetNames().join(', ')}, got '${flags.preset}'`);
  const started = performance.now();
  const model = generateModel({
    preset: flags.preset,
    seed: integer('--seed', flags.seed),
    out: flags.out,
    dtype,
    ...(flags.layers !== undefined ? { layers: integer('--layers', flags.layers) } : {}),
    ...(flags.maxShardSize !== undefined ? { maxShardBytes: parseByteSize(flags.maxShardSize) } : {}),
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(`wrote ${model.preset.name} (${dtype}) to ${model.dir}: ${model.files.length} weight file(s), ${(model.bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s`);
}
