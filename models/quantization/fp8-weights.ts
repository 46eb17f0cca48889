// Loading a linear layer's weight as FP8 (native/src/model/linear.h), as a pass
// over the model's linears that weights.ts asks once per fused linear:
//
//   checkpoint FP8 (fbgemm_fp8, compressed-tensors float-quantized, fp8):
//     <module>.weight        F8_E4M3 [N, K]   copied as stored: 1 byte per weight, resident as FP8
//     <module>.weight_scale  [N, 1] / [N] (per channel) or [] / [1] (per tensor; repeated per channel)
//     <module>.input_scale   [] / [1], static activations only
//   online (--quantization fp8 on a bf16 / fp16 / fp32 checkpoint):
//     every decoder linear quantized at load per output channel (FBGEMM's
//     scheme, native fp8QuantizeWeights), dynamic per-token activations; the
//     lm head stays bf16 (as vLLM's online FP8).
//
// Fused linears (qkv from q/k/v, gate_up from gate/up) concatenate their
// parts' rows and scales; their parts must agree (all FP8 or none). Static
// input scales of fused parts are combined by max, as vLLM does. Modules in
// the checkpoint's ignore list are stored bf16 and load as stored.
//
// A tensor-parallel rank (models/shard.ts) asks for its slice only:
//   column-parallel (qkv, gate_up, lm head)  rows of each part: codes and scales
//   row-parallel (o, down)                   columns of the codes, laid out in the
//                                            rank's segments (ColumnSlice); scales whole,
//                                            one per output row
// Online quantization scales each output row by its whole row's absmax, so a
// row-parallel slice is quantized from the whole matrix (read transiently)
// and then cut: every rank holds tp 1's codes for its columns.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NativeAddon } from '../../native/index.js';
import type { NativeFp8Linear } from '../../native/model-raw.js';
import type { Checkpoint } from '../checkpoint.js';
import { ModelLoadError, ModelOptionError } from '../errors.js';
import { readBytesInto, readTensorInto } from '../safetensors.js';
import { parseQuantizationConfig, type Fp8Scheme } from './config.js';

/** --quantization: 'fp8' (online, or an FP8 checkpoint of quant_method fp8), or a checkpoint's own method name. */
type QuantizationOption = 'fp8' | 'fbgemm_fp8' | 'compressed-tensors';
const QUANTIZATION_OPTIONS: readonly QuantizationOption[] = ['fp8', 'fbgemm_fp8', 'compressed-tensors'];

/** Where FP8 linears come from for this checkpoint: its own format, online quantization, or nowhere. */
export type Fp8Source = { kind: 'checkpoint'; scheme: Fp8Scheme } | { kind: 'online' } | { kind: 'none' };

/** Allocates aligned native memory, counting it as resident weight bytes. */
export interface WeightAllocator {
  bytes(n: number): ArrayBuffer;
}

/** Reads config.json's quantization_config and checks it against --quantization. */
export function resolveFp8Source(ckpt: Checkpoint, option: string | undefined): Fp8Source {
  const file = join(ckpt.dir, 'config.json');
  const scheme = parseQuantizationConfig(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>, file);
  if (option !== undefined && !(QUANTIZATION_OPTIONS as readonly string[]).includes(option))
    throw new ModelOptionError('--quantization', `unknown method '${option}' (supported: ${QUANTIZATION_OPTIONS.join(', ')})`);
  if (scheme) {
    if (option !== undefined && option !== scheme.method)
      throw new ModelOptionError('--quantization', `'${option}' does not match the checkpoint's quant_method '${scheme.method}' (config.json); drop --quantization to use the checkpoint's format`);
    return { kind: 'checkpoint', scheme };
  }
  if (option === 'fp8') return { kind: 'online' };
  if (option !== undefined)
    throw new ModelOptionError('--quantization', `'${option}' needs a checkpoint quantized that way (config.json has no quantization_config); use --quantization fp8 to quantize this one at load`);
  return { kind: 'none' };
}

function dims(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A scale tensor's values: per channel ([N, 1] or [N]) or per tensor ([] or [1]); finite and positive. */
function readScales(ckpt: Checkpoint, name: string, rows: number, granularity: 'channel' | 'tensor' | 'scalar', method: string): Float32Array {
  if (!ckpt.has(name)) throw new ModelLoadError(ckpt.files.length === 1 ? ckpt.files[0]! : ckpt.dir, `tensor is missing: ${method} FP8 weights need it`, { tensor: name });
  const entry = ckpt.entry(name);
  const s = entry.shape;
  const channel = (s.length === 2 && s[0] === rows && s[1] === 1) || (s.length === 1 && s[0] === rows);
  const tensor = s.length === 0 || (s.length === 1 && s[0] === 1);
  if (granularity === 'channel' ? !channel : !tensor) {
    const want = granularity === 'channel' ? `[${rows}, 1] or [${rows}] (one scale per output channel)` : '[] or [1] (one scale per tensor)';
    throw new ModelLoadError(entry.file, `scale shape ${dims(s)} does not fit: ${method} needs ${want}`, { tensor: name });
  }
  const out = new Float32Array(tensor ? 1 : rows);
  const flat = { ...entry, shape: [out.length] };
  readTensorInto(flat, out);
  for (const v of out)
    if (!(Number.isFinite(v) && v > 0)) throw new ModelLoadError(entry.file, `scale ${v} is not a finite positive number`, { tensor: name });
  return out;
}

export interface LinearPart {
  /** Module name without ".weight", e.g. "model.layers.3.self_attn.q_proj". */
  module: string;
  shape: [number, number];
  /** Rows [begin, end) of this part that a tensor-parallel rank holds (absent: all). */
  rows?: [number, number];
}

/**
 * Columns of a row-parallel linear that a rank holds: `cols` of the module's K, stored
 * as `segments` ([begin, end) relative to cols[0], covering it in order) one after
 * another, each an [N, end - begin] matrix (models/shard.ts, native/src/model/model_parallel.h).
 */
export interface ColumnSlice {
  cols: [number, number];
  segments: [number, number][];
}

/** Copies columns `slice` of codes [N, K] into out, segment-major (ColumnSlice). */
function cutColumns(codes: Uint8Array, N: number, K: number, slice: ColumnSlice, out: Uint8Array): void {
  for (const [b, e] of slice.segments) {
    const k = e - b, c0 = slice.cols[0] + b;
    for (let n = 0; n < N; n++) out.set(codes.subarray(n * K + c0, n * K + c0 + k), N * b + n * k);
  }
}

/**
 * The fused linear of `parts` as FP8, or undefined when it stays in the
 * model's dtype (no FP8 source, or modules stored bf16 / ignored). `columns`:
 * a row-parallel rank's columns (one part, all its rows).
 */
export function loadFp8Linear(ckpt: Checkpoint, source: Fp8Source, parts: LinearPart[], alloc: WeightAllocator, native: NativeAddon, columns?: ColumnSlice): NativeFp8Linear | undefined {
  const entries = parts.map((p) => ckpt.tensor(`${p.module}.weight`, p.shape));
  if (source.kind === 'none') {
    const f8 = entries.find((e) => e.dtype.startsWith('F8_'));
    if (f8) throw new ModelLoadError(f8.file, `${f8.dtype} weights, but config.json has no quantization_config saying how they are scaled (fbgemm_fp8, compressed-tensors or fp8); restore it`, { tensor: f8.name });
    return undefined;
  }
  if (columns && (parts.length !== 1 || parts[0]!.rows)) throw new RangeError('loadFp8Linear: a column slice takes one part with all its rows');
  const rowsOf = (p: LinearPart): [number, number] => p.rows ?? [0, p.shape[0]];
  const fullK = parts[0]!.shape[1];
  const K = columns ? columns.cols[1] - columns.cols[0] : fullK;
  const N = parts.reduce((n, p) => n + rowsOf(p)[1] - rowsOf(p)[0], 0);
  if (source.kind === 'online') {
    if (entries.some((e) => e.dtype === 'F8_E4M3' || e.dtype === 'F8_E5M2'))
      throw new ModelLoadError(entries[0]!.file, 'the checkpoint holds FP8 tensors but config.json has no quantization_config', { tensor: entries[0]!.name });
    const src = new Uint16Array(N * fullK);
    let offset = 0;
    parts.forEach((p, i) => (offset += readTensorInto(entries[i]!, src, offset, { rows: rowsOf(p) })));
    const fp8 = new Uint8Array(alloc.bytes(N * K));
    const scale = new Float32Array(alloc.bytes(N * 4));
    if (K === fullK) {
      native.model.fp8QuantizeWeights(src, N, K, fp8, scale);
    } else {  // whole rows quantized (each row's scale from all its columns), then this rank's columns kept
      const codes = new Uint8Array(N * fullK);
      native.model.fp8QuantizeWeights(src, N, fullK, codes, scale);
      cutColumns(codes, N, fullK, columns!, fp8);
    }
    return { fp8, scale };
  }
  const scheme = source.scheme;
  const isFp8 = entries.map((e) => e.dtype === 'F8_E4M3');
  for (const e of entries)
    if (e.dtype === 'F8_E5M2') throw new ModelLoadError(e.file, 'F8_E5M2 weights are not supported (FP8 weights must be e4m3fn)', { tensor: e.name });
  if (isFp8.every((f) => !f)) return undefined;
  if (!isFp8.every((f) => f))
    throw new ModelLoadError(entries[0]!.file, `the fused parts ${parts.map((p) => p.module).join(', ')} must all be FP8 or all unquantized, but only some are F8_E4M3 (check the ignore / modules_to_not_convert list)`, { tensor: entries[isFp8.indexOf(false)]!.name });
  const fp8 = new Uint8Array(alloc.bytes(N * K));
  const scale = new Float32Array(alloc.bytes(N * 4));
  let inputScale = 0;
  let row = 0;
  parts.forEach((p, i) => {
    const [r0, r1] = rowsOf(p);
    const rows = r1 - r0;
    if (!columns) readBytesInto(entries[i]!, fp8, row * K, { rows: [r0, r1] });
    else for (const [b, e] of columns.segments) readBytesInto(entries[i]!, fp8, N * b, { cols: [columns.cols[0] + b, columns.cols[0] + e] });
    const s = readScales(ckpt, `${p.module}.weight_scale`, p.shape[0], scheme.weightScale, scheme.method);
    if (s.length === 1) scale.fill(s[0]!, row, row + rows);
    else scale.set(s.subarray(r0, r1), row);
    if (scheme.activations.kind === 'static') inputScale = Math.max(inputScale, readScales(ckpt, `${p.module}.input_scale`, 1, 'scalar', `${scheme.method} with static activations`)[0]!);
    row += rows;
  });
  const linear: NativeFp8Linear = { fp8, scale };
  if (scheme.activations.kind === 'static') linear.inputScale = inputScale;
  else if (scheme.activations.upperBound !== null) linear.activationUb = scheme.activations.upperBound;
  return linear;
}
