// HF config.json and generation_config.json of a Llama 3.x checkpoint, parsed
// into the shape the loader and the forward pass use. Anything Troupe cannot
// run is an error naming the file and the field, never silently ignored.
import { readFileSync } from 'node:fs';
import { ModelLoadError } from './errors.js';

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface LlamaConfig {
  architecture: 'LlamaForCausalLM';
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** torch_dtype of the checkpoint ('bfloat16', 'float16', 'float32'). */
  torchDtype: string;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export interface GenerationConfig {
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Everything else in the file, as written (temperature, top_p, ...). */
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function readJson(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'file is missing' : `cannot read: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(file, `not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ModelLoadError(file, 'must hold a JSON object');
  return parsed as Json;
}

function positiveInt(file: string, json: Json, key: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ModelLoadError(file, `"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function positiveNumber(file: string, json: Json, key: string, fallback?: number): number {
  const v = json[key] ?? fallback;
  if (typeof v !== 'number' || !(v > 0)) throw new ModelLoadError(file, `"${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

function ropeScaling(file: string, json: Json): Llama3RopeScaling | null {
  const rs = json['rope_scaling'];
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== 'object') throw new ModelLoadError(file, `"rope_scaling" must be an object or null`);
  const r = rs as Json;
  const type = r['rope_type'] ?? r['type'];
  if (type === 'default') return null;
  if (type !== 'llama3') throw new ModelLoadError(file, `unsupported rope_scaling type ${JSON.stringify(type)} (Troupe supports 'llama3' and none)`);
  const scaling: Llama3RopeScaling = {
    type: 'llama3',
    factor: positiveNumber(file, r, 'factor'),
    lowFreqFactor: positiveNumber(file, r, 'low_freq_factor'),
    highFreqFactor: positiveNumber(file, r, 'high_freq_factor'),
    originalMaxPositionEmbeddings: positiveInt(file, r, 'original_max_position_embeddings'),
  };
  if (!(scaling.highFreqFactor > scaling.lowFreqFactor)) throw new ModelLoadError(file, `rope_scaling: high_freq_factor must exceed low_freq_factor`);
  return scaling;
}

/** Parses config.json (path to the file). */
export function readLlamaConfig(file: string): LlamaConfig {
  const json = readJson(file);
  const archs = json['architectures'];
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  if (arch !== 'LlamaForCausalLM') {
    throw new ModelLoadError(file, `unsupported architecture ${JSON.stringify(arch ?? archs ?? null)} (Troupe runs LlamaForCausalLM)`);
  }
  if (json['model_type'] !== undefined && json['model_type'] !== 'llama') {
    throw new ModelLoadError(file, `unsupported model_type ${JSON.stringify(json['model_type'])} (expected 'llama')`);
  }
  const act = json['hidden_act'] ?? 'silu';
  if (act !== 'silu') throw new ModelLoadError(file, `unsupported hidden_act ${JSON.stringify(act)} (Llama uses 'silu')`);
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (json[key] === true) throw new ModelLoadError(file, `"${key}": true is not supported (Llama 3 has no biases)`);
  }
  const hiddenSize = positiveInt(file, json, 'hidden_size');
  const numHeads = positiveInt(file, json, 'num_attention_heads');
  const numKvHeads = positiveInt(file, json, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) throw new ModelLoadError(file, `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  const headDim = positiveInt(file, json, 'head_dim', Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0 || headDim > 256) throw new ModelLoadError(file, `head_dim ${headDim} must be even and at most 256`);
  const torchDtype = typeof json['torch_dtype'] === 'string' ? (json['torch_dtype'] as string) : 'bfloat16';
  return {
    architecture: 'LlamaForCausalLM',
    hiddenSize,
    numLayers: positiveInt(file, json, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: positiveInt(file, json, 'intermediate_size'),
    vocabSize: positiveInt(file, json, 'vocab_size'),
    rmsNormEps: positiveNumber(file, json, 'rms_norm_eps', 1e-5),
    ropeTheta: positiveNumber(file, json, 'rope_theta', 10000),
    ropeScaling: ropeScaling(file, json),
    maxPositionEmbeddings: positiveInt(file, json, 'max_position_embeddings', 2048),
    tieWordEmbeddings: json['tie_word_embeddings'] === true,
    torchDtype,
    bosTokenId: typeof json['bos_token_id'] === 'number' ? (json['bos_token_id'] as number) : null,
    eosTokenIds: tokenIds(json['eos_token_id']),
  };
}

/** Parses generation_config.json; a missing file gives the config's own ids. */
export function readGenerationConfig(file: string, config: LlamaConfig, required = false): GenerationConfig {
  let json: Json;
  try {
    json = readJson(file);
  } catch (err) {
    if (!required && err instanceof ModelLoadError && err.message.endsWith('file is missing')) {
      return { bosTokenId: config.bosTokenId, eosTokenIds: config.eosTokenIds, raw: {} };
    }
    throw err;
  }
  const eos = tokenIds(json['eos_token_id']);
  return {
    bosTokenId: typeof json['bos_token_id'] === 'number' ? (json['bos_token_id'] as number) : config.bosTokenId,
    eosTokenIds: eos.length > 0 ? eos : config.eosTokenIds,
    raw: json,
  };
}
