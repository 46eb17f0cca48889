// `troupe quantize --fp8 IN_DIR OUT_DIR [--scheme meta|all]`: writes an
// FBGEMM-format FP8 checkpoint (Meta's format) from a bf16/fp16/fp32 one.
//
//   meta  like Meta's Llama 3.1 405B FP8: the MLP projections (gate, up, down)
//         of the middle layers in FP8; attention, the first and last layers
//         and the lm head stay bf16 (listed in modules_to_not_convert)
//   all   every linear of every layer and the lm head in FP8; a tied lm head
//         is untied into its own lm_head.weight
//
// Per output channel: weight_scale = max|row| / 448 (f32 [out, 1]), weight =
// e4m3(w / scale) (the native quantizer, bit for bit fp8.ts's quantizeRowsE4M3:
// test/native/fp8-gemm.test.ts). Tensors are processed a block of rows at a
// time, so memory stays bounded whatever the model size.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint } from '../checkpoint.js';
import { readTensorInto, type TensorEntry } from '../safetensors.js';
import { loadNative } from '../../native/index.js';
import { SafetensorsWriter } from './safetensors-writer.js';

export type QuantizeScheme = 'meta' | 'all';

/** FBGEMM's activation upper bound in Meta's checkpoints. */
const META_ACTIVATION_SCALE_UB = 1200.0;
const LINEARS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
const ROWS_PER_BLOCK = 256;
const COPIED_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The linear modules (without ".weight") the scheme puts in FP8. */
export function fp8Modules(numLayers: number, scheme: QuantizeScheme): { quantized: string[]; kept: string[] } {
  const quantized: string[] = [];
  const kept: string[] = [];
  for (let l = 0; l < numLayers; l++) {
    for (const linear of LINEARS) {
      const name = `model.layers.${l}.${linear}`;
      const middle = l > 0 && l < numLayers - 1;
      const fp8 = scheme === 'all' || (middle && linear.startsWith('mlp.'));
      (fp8 ? quantized : kept).push(name);
    }
  }
  if (scheme === 'all') quantized.push('lm_head');
  else kept.push('lm_head');
  return { quantized, kept };
}

export interface QuantizeResult {
  quantizedTensors: number;
  keptTensors: number;
  bytesWritten: number;
}

export function quantizeCheckpoint(inDir: string, outDir: string, scheme: QuantizeScheme): QuantizeResult {
  if (scheme !== 'meta' && scheme !== 'all') throw new RangeError(`--scheme must be "meta" or "all", got "${scheme}"`);
  const ckpt = Checkpoint.open(inDir);
  const configJson = JSON.parse(readFileSync(join(ckpt.dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (configJson['quantization_config']) throw new RangeError(`${inDir} is already quantized (quantization_config present); start from a bf16 checkpoint`);
  const { quantized, kept } = fp8Modules(ckpt.config.numLayers, scheme);
  const fp8 = new Set(quantized);
  mkdirSync(outDir, { recursive: true });
  const writer = new SafetensorsWriter(join(outDir, 'model.safetensors'));
  const untie = scheme === 'all' && ckpt.config.tieWordEmbeddings;
  let quantizedTensors = 0;
  let keptTensors = 0;
  const names = ckpt.tensorNames;
  if (untie && !names.includes('lm_head.weight')) names.push('lm_head.weight');
  for (const name of names) {
    const source = ckpt.entry(name === 'lm_head.weight' && untie ? 'model.embed_tokens.weight' : name);
    const module = name.replace(/\.weight$/, '');
    if (name.endsWith('.weight') && fp8.has(module)) {
      writeQuantized(writer, name, source);
      quantizedTensors++;
    } else {
      writeBf16(writer, name, source);
      keptTensors++;
    }
  }
  const bytesWritten = writer.finish();
  configJson['quantization_config'] = {
    quant_method: 'fbgemm_fp8',
    activation_scale_ub: META_ACTIVATION_SCALE_UB,
    modules_to_not_convert: kept,
  };
  configJson['torch_dtype'] = 'bfloat16';
  if (untie) configJson['tie_word_embeddings'] = false;
  writeFileSync(join(outDir, 'config.json'), JSON.stringify(configJson, null, 2) + '\n');
  for (const file of COPIED_FILES) if (existsSync(join(ckpt.dir, file))) copyFileSync(join(ckpt.dir, file), join(outDir, file));
  return { quantizedTensors, keptTensors, bytesWritten };
}

function writeQuantized(writer: SafetensorsWriter, name: string, entry: TensorEntry): void {
  const [rows, cols] = entry.shape as [number, number];
  const scales = new Float32Array(rows);
  writer.tensor(name, 'F8_E4M3', [rows, cols], (emit) => {
    const block = new Float32Array(ROWS_PER_BLOCK * cols);
    for (let r = 0; r < rows; r += ROWS_PER_BLOCK) {
      const n = Math.min(ROWS_PER_BLOCK, rows - r);
      readTensorInto(entry, block, 0, { rows: [r, r + n] });
      const codes = new Uint8Array(n * cols);
      loadNative().model.fp8QuantizeWeights(block.subarray(0, n * cols), n, cols, codes, scales.subarray(r, r + n));
      emit(codes);
    }
  });
  writer.tensor(name.replace(/\.weight$/, '.weight_scale'), 'F32', [rows, 1], (emit) => emit(new Uint8Array(scales.buffer)));
}

function writeBf16(writer: SafetensorsWriter, name: string, entry: TensorEntry): void {
  const rows = entry.shape[0] ?? 1;
  const cols = entry.shape.length > 1 ? entry.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  writer.tensor(name, 'BF16', entry.shape, (emit) => {
    const block = new Uint16Array(entry.shape.length > 1 ? ROWS_PER_BLOCK * cols : rows); // a 1-D tensor in one piece
    for (let r = 0; r < rows; r += ROWS_PER_BLOCK) {
      const n = Math.min(ROWS_PER_BLOCK, rows - r);
      readTensorInto(entry, block, 0, entry.shape.length > 1 ? { rows: [r, r + n] } : {});
      emit(new Uint8Array(block.buffer, 0, (entry.shape.length > 1 ? n * cols : rows) * 2));
      if (entry.shape.length <= 1) break;
    }
  });
}
