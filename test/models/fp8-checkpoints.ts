// Writes FP8 checkpoints of the three formats from a generated bf16 model, for
// the loader tests: each linear chosen is quantized with the native quantizer
// (per channel, or per tensor by quantizing the whole matrix as one row), and
// `edit` may tamper with the tensors before they are written (malformed cases).
import { copyFileSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '../../native/index.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { SafetensorsWriter } from '../../models/quantization/safetensors-writer.js';
import { readTensorInto } from '../../models/safetensors.js';
import { tempDir } from './helpers.js';

export interface RawTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

export interface Fp8CheckpointSpec {
  /** Written as config.json's quantization_config (absent: none). */
  quantizationConfig?: Record<string, unknown>;
  /** Which linear modules ("model.layers.0.mlp.up_proj", "lm_head") are stored FP8. */
  quantized: (module: string) => boolean;
  weightScale: 'channel' | 'tensor';
  /** Static input scale written as <module>.input_scale (shape []). */
  inputScale?: number;
  edit?: (tensors: Map<string, RawTensor>) => void;
}

const LINEAR = /^(model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)|lm_head)\.weight$/;

function raw(ckpt: Checkpoint, name: string): RawTensor {
  const e = ckpt.entry(name);
  const data = new Uint8Array(e.end - e.begin);
  data.set(readFileSync(e.file).subarray(e.begin, e.end));
  return { dtype: e.dtype, shape: [...e.shape], data };
}

export function writeFp8Checkpoint(src: string, spec: Fp8CheckpointSpec): string {
  const out = tempDir('fp8ckpt');
  mkdirSync(out, { recursive: true });
  const ckpt = Checkpoint.open(src);
  const config = JSON.parse(readFileSync(join(ckpt.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const names = ckpt.tensorNames;
  const untie = spec.quantized('lm_head') && ckpt.config.tieWordEmbeddings;
  if (untie) {
    names.push('lm_head.weight');
    config['tie_word_embeddings'] = false;
  }
  const tensors = new Map<string, RawTensor>();
  for (const name of names) {
    const source = name === 'lm_head.weight' && untie ? 'model.embed_tokens.weight' : name;
    const module = name.replace(/\.weight$/, '');
    if (!LINEAR.test(name) || !spec.quantized(module)) {
      tensors.set(name, raw(ckpt, source));
      continue;
    }
    const e = ckpt.entry(source);
    const [rows, cols] = e.shape as [number, number];
    const w = new Float32Array(rows * cols);
    readTensorInto(e, w);
    const codes = new Uint8Array(rows * cols);
    const tensorWise = spec.weightScale === 'tensor';
    const scales = new Float32Array(tensorWise ? 1 : rows);
    loadNative().model.fp8QuantizeWeights(w, tensorWise ? 1 : rows, tensorWise ? rows * cols : cols, codes, scales);
    tensors.set(name, { dtype: 'F8_E4M3', shape: [rows, cols], data: codes });
    tensors.set(`${module}.weight_scale`, { dtype: 'F32', shape: tensorWise ? [] : [rows, 1], data: new Uint8Array(scales.buffer) });
    if (spec.inputScale !== undefined) tensors.set(`${module}.input_scale`, { dtype: 'F32', shape: [], data: new Uint8Array(new Float32Array([spec.inputScale]).buffer) });
  }
  spec.edit?.(tensors);
  const writer = new SafetensorsWriter(join(out, 'model.safetensors'));
  for (const [name, t] of tensors) writer.tensor(name, t.dtype, t.shape, (emit) => emit(t.data));
  writer.finish();
  if (spec.quantizationConfig) config['quantization_config'] = spec.quantizationConfig;
  writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2));
  for (const f of ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'])
    if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
  return out;
}

/** compressed-tensors float-quantized config with one group. */
export function compressedTensorsConfig(strategy: 'channel' | 'tensor', dynamic: boolean, ignore: string[]): Record<string, unknown> {
  return {
    quant_method: 'compressed-tensors',
    format: 'float-quantized',
    config_groups: {
      group_0: {
        targets: ['Linear'],
        weights: { num_bits: 8, type: 'float', strategy, dynamic: false, symmetric: true },
        input_activations: { num_bits: 8, type: 'float', strategy: dynamic ? 'token' : 'tensor', dynamic, symmetric: true },
      },
    },
    ignore,
  };
}
