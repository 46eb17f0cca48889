// An HF model directory: config.json, generation_config.json, and the weights
// in model.safetensors or in shards listed by model.safetensors.index.json.
// Opening validates every file's header and the index; `tensor()` checks a
// tensor's shape against what the config implies.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readGenerationConfig, readLlamaConfig, type GenerationConfig, type LlamaConfig } from './config.js';
import { ModelLoadError } from './errors.js';
import { readSafetensorsHeader, type TensorEntry } from './safetensors.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export class Checkpoint {
  readonly dir: string;
  readonly config: LlamaConfig;
  readonly generationConfig: GenerationConfig;
  /** The weight files, in index order. */
  readonly files: string[];
  private readonly tensors: Map<string, TensorEntry>;

  private constructor(dir: string, config: LlamaConfig, generationConfig: GenerationConfig, files: string[], tensors: Map<string, TensorEntry>) {
    this.dir = dir;
    this.config = config;
    this.generationConfig = generationConfig;
    this.files = files;
    this.tensors = tensors;
  }

  static open(dirPath: string): Checkpoint {
    const dir = resolve(dirPath);
    if (!existsSync(dir)) throw new ModelLoadError(dir, 'model directory is missing');
    const config = readLlamaConfig(join(dir, 'config.json'));
    const generationConfig = readGenerationConfig(join(dir, 'generation_config.json'), config);
    const { files, tensors } = openWeights(dir);
    return new Checkpoint(dir, config, generationConfig, files, tensors);
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor `name`, which must exist and have `shape`. */
  tensor(name: string, shape: readonly number[]): TensorEntry {
    const entry = this.tensors.get(name);
    if (entry === undefined) {
      const where = this.files.length === 1 ? this.files[0]! : join(this.dir, INDEX_FILE);
      throw new ModelLoadError(where, 'tensor is missing', { tensor: name });
    }
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new ModelLoadError(entry.file, `shape mismatch: the file has [${entry.shape.join(', ')}], config.json implies [${shape.join(', ')}]`, { tensor: name });
    }
    return entry;
  }

  /** The tensor `name` as stored (no shape check against the config). */
  entry(name: string): TensorEntry {
    const entry = this.tensors.get(name);
    if (entry === undefined) throw new ModelLoadError(this.files.length === 1 ? this.files[0]! : join(this.dir, INDEX_FILE), 'tensor is missing', { tensor: name });
    return entry;
  }

  get tensorNames(): string[] {
    return [...this.tensors.keys()];
  }
}

function openWeights(dir: string): { files: string[]; tensors: Map<string, TensorEntry> } {
  const indexPath = join(dir, INDEX_FILE);
  if (existsSync(indexPath)) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(indexPath, 'utf8')) as typeof index;
    } catch (err) {
      throw new ModelLoadError(indexPath, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null) throw new ModelLoadError(indexPath, '"weight_map" is missing');
    const files = [...new Set(Object.values(map))].map((f) => join(dir, f));
    const headers = new Map(files.map((f) => [f, readSafetensorsHeader(f)]));
    const tensors = new Map<string, TensorEntry>();
    for (const [name, shard] of Object.entries(map)) {
      const file = join(dir, shard);
      const entry = headers.get(file)!.tensors.get(name);
      if (entry === undefined) throw new ModelLoadError(file, `the index maps the tensor to this file, which lacks it`, { tensor: name });
      tensors.set(name, entry);
    }
    return { files, tensors };
  }
  const single = join(dir, SINGLE_FILE);
  if (!existsSync(single)) throw new ModelLoadError(single, `file is missing (and there is no ${INDEX_FILE} naming shards)`);
  return { files: [single], tensors: readSafetensorsHeader(single).tensors };
}
