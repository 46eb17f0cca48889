// FP8 formats and checkpoints: e4m3 / e5m2 bit conversions, FBGEMM
// per-channel quantization, quantization_config parsing, and `troupe quantize`.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Checkpoint } from '../../models/checkpoint.js';
import { ModelLoadError } from '../../models/errors.js';
import { activationScale, isKeptUnquantized, parseQuantizationConfig } from '../../models/quantization/config.js';
import { E4M3_VALUES, E5M2_VALUES, encodeE4M3, encodeE5M2, quantizeRowsE4M3 } from '../../models/quantization/fp8.js';
import { fp8Modules, quantizeCheckpoint } from '../../models/quantization/quantize.js';
import { readTensorInto } from '../../models/safetensors.js';
import { generatedModel } from './helpers.js';

test('e4m3fn: every finite code round-trips; known values, saturation, ties to even, NaN', (t) => {
  for (let code = 0; code < 256; code++) {
    const v = E4M3_VALUES[code]!;
    if (Number.isNaN(v)) continue;
    if (code === 0x80) continue; // -0 encodes as 0x80 too, checked below
    t.is(encodeE4M3(v), code, `code ${code} (${v})`);
  }
  t.is(E4M3_VALUES[0x7e], 448);
  t.is(E4M3_VALUES[0x01], 2 ** -9, 'smallest subnormal');
  t.true(Number.isNaN(E4M3_VALUES[0x7f]!) && Number.isNaN(E4M3_VALUES[0xff]!));
  t.is(encodeE4M3(1000), 0x7e, 'saturates to 448');
  t.is(encodeE4M3(-1000), 0xfe);
  t.is(encodeE4M3(-0), 0x80);
  // 1.0 = 0x38, next is 1.125 = 0x39; 1.0625 is the tie: even code 0x38 wins; 1.1875 ties 0x39/0x3a -> 0x3a
  t.is(encodeE4M3(1.0625), 0x38);
  t.is(encodeE4M3(1.1875), 0x3a);
  t.is(encodeE4M3(1.07), 0x39);
  t.is(encodeE4M3(NaN), 0x7f);
  // every e4m3 value is a bf16 value: its float32 bits have 16 zero low bits
  const bits = new Uint32Array(new Float32Array(E4M3_VALUES.filter((v) => Number.isFinite(v))).buffer);
  t.true(bits.every((b) => (b & 0xffff) === 0));
});

test('e5m2: codes round-trip; infinity and max', (t) => {
  for (let code = 0; code < 256; code++) {
    const v = E5M2_VALUES[code]!;
    if (!Number.isFinite(v) || code === 0x80) continue;
    t.is(encodeE5M2(v), code);
  }
  t.is(E5M2_VALUES[0x7b], 57344);
  t.is(E5M2_VALUES[0x7c], Infinity);
  t.is(encodeE5M2(1e9), 0x7b, 'finite values saturate');
});

test('per-channel quantization: scale = row absmax / 448, error within half an e4m3 step', (t) => {
  const rows = 3;
  const cols = 50;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % cols === 7 ? 9 : 0)) * (Math.floor(i / cols) + 1));
  w.fill(0, 2 * cols, 3 * cols); // an all-zero row
  const { codes, scales } = quantizeRowsE4M3(w, rows, cols);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(w[r * cols + c]!));
    t.is(scales[r], Math.fround(amax > 0 ? amax / 448 : 1));
    for (let c = 0; c < cols; c++) {
      const x = w[r * cols + c]!;
      const back = E4M3_VALUES[codes[r * cols + c]!]! * scales[r]!;
      // e4m3 has 3 mantissa bits: relative error <= 2^-4, absolute floor from subnormals
      t.true(Math.abs(back - x) <= Math.abs(x) * 2 ** -4 + scales[r]! * 2 ** -10, `row ${r} col ${c}: ${x} -> ${back}`);
    }
  }
});

test('quantization_config: the three formats normalize; malformed ones are refused with the field named', (t) => {
  const meta = parseQuantizationConfig({ quantization_config: { quant_method: 'fbgemm_fp8', activation_scale_ub: 1200, modules_to_not_convert: ['lm_head', 'model.layers.0.mlp.down_proj'] } })!;
  t.like(meta, { method: 'fbgemm_fp8', weightScale: 'channel', activations: { kind: 'dynamic', upperBound: 1200 } });
  t.true(isKeptUnquantized(meta, 'lm_head'));
  t.true(isKeptUnquantized(meta, 'model.layers.0.mlp.down_proj'));
  t.false(isKeptUnquantized(meta, 'model.layers.10.mlp.down_proj'));
  const ct = parseQuantizationConfig({ quantization_config: {
    quant_method: 'compressed-tensors', format: 'float-quantized', ignore: ['re:.*self_attn.*', 'lm_head'],
    config_groups: { group_0: { weights: { num_bits: 8, type: 'float', strategy: 'tensor' }, input_activations: { num_bits: 8, type: 'float', dynamic: false, strategy: 'tensor' } } },
  } })!;
  t.like(ct, { method: 'compressed-tensors', weightScale: 'tensor', activations: { kind: 'static' } });
  t.true(isKeptUnquantized(ct, 'model.layers.3.self_attn.q_proj'));
  t.like(parseQuantizationConfig({ quantization_config: { quant_method: 'fp8', activation_scheme: 'dynamic' } }), { weightScale: 'tensor', activations: { kind: 'dynamic', upperBound: null } });
  t.is(parseQuantizationConfig({}), null);
  const refuse = (q: unknown, pattern: RegExp) => t.throws(() => parseQuantizationConfig({ quantization_config: q }), { instanceOf: ModelLoadError, message: pattern });
  refuse({ quant_method: 'awq' }, /quant_method "awq" is not supported/);
  refuse({ quant_method: 'fbgemm_fp8', activation_scale_ub: -1 }, /activation_scale_ub must be a positive number/);
  refuse({ quant_method: 'fbgemm_fp8', modules_to_not_convert: 'lm_head' }, /modules_to_not_convert must be a list/);
  refuse({ quant_method: 'fp8', activation_scheme: 'sometimes' }, /activation_scheme must be "dynamic" or "static"/);
  refuse({ quant_method: 'compressed-tensors', format: 'pack-quantized' }, /only format "float-quantized"/);
  refuse({ quant_method: 'compressed-tensors', format: 'float-quantized', config_groups: { g: { weights: { num_bits: 4, type: 'int' } } } }, /weights must be \{num_bits: 8, type: "float"\}/);
  refuse('fp8', /must be an object/);
});

test("FBGEMM's dynamic activation scale clamps by the upper bound and floors at 1/(448*512)", (t) => {
  t.is(activationScale(896, null), 2);
  t.is(activationScale(5000, 1200), 1200 / 448);
  t.is(activationScale(0, 1200), 1 / (448 * 512));
});

test('meta scheme: MLPs of the middle layers only; all: every linear and the lm head', (t) => {
  const meta = fp8Modules(4, 'meta');
  t.deepEqual(meta.quantized, ['model.layers.1.mlp.gate_proj', 'model.layers.1.mlp.up_proj', 'model.layers.1.mlp.down_proj', 'model.layers.2.mlp.gate_proj', 'model.layers.2.mlp.up_proj', 'model.layers.2.mlp.down_proj']);
  t.true(meta.kept.includes('lm_head') && meta.kept.includes('model.layers.0.mlp.up_proj') && meta.kept.includes('model.layers.1.self_attn.q_proj'));
  const all = fp8Modules(4, 'all');
  t.is(all.quantized.length, 4 * 7 + 1);
  t.deepEqual(all.kept, []);
});

test('troupe quantize writes an FBGEMM checkpoint that opens, with FP8 weights and per-channel scales', (t) => {
  const src = generatedModel('tiny', 3, 'bf16', { layers: 4 }); // 4 layers: two middle ones for the meta scheme
  for (const scheme of ['meta', 'all'] as const) {
    const out = mkdtempSync(join(tmpdir(), `troupe-fp8-${scheme}-`));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const result = quantizeCheckpoint(src, out, scheme);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    t.is(config.quantization_config.quant_method, 'fbgemm_fp8');
    const ckpt = Checkpoint.open(out);
    const expected = fp8Modules(4, scheme).quantized;
    t.true(expected.length > 0);
    t.is(result.quantizedTensors, expected.length);
    for (const module of expected) {
      const w = ckpt.entry(`${module}.weight`);
      t.is(w.dtype, 'F8_E4M3', module);
      t.deepEqual(ckpt.entry(`${module}.weight_scale`).shape, [w.shape[0], 1]);
    }
    if (scheme === 'all') {
      t.false(config.tie_word_embeddings);
      t.is(ckpt.entry('lm_head.weight').dtype, 'F8_E4M3');
    } else {
      t.is(ckpt.entry('model.layers.0.self_attn.q_proj.weight').dtype, 'BF16');
    }
    // a quantized weight dequantizes to within e4m3 precision of the original
    const name = 'model.layers.2.mlp.up_proj.weight';
    const original = Checkpoint.open(src).entry(name);
    const [rows, cols] = original.shape as [number, number];
    const ref = new Float32Array(rows * cols);
    readTensorInto(original, ref);
    const codes = readFileSync(ckpt.entry(name).file).subarray(ckpt.entry(name).begin, ckpt.entry(name).end);
    const scaleEntry = ckpt.entry(name.replace('.weight', '.weight_scale'));
    const scales = new Float32Array(rows);
    readTensorInto(scaleEntry, scales);
    let worst = 0;
    for (let i = 0; i < rows * cols; i++) {
      const back = E4M3_VALUES[codes[i]!]! * scales[Math.floor(i / cols)]!;
      worst = Math.max(worst, Math.abs(back - ref[i]!) / (scales[Math.floor(i / cols)]! * 448));
    }
    t.true(worst <= 2 ** -4, `worst error relative to the row max: ${worst}`);
  }
  t.throws(() => quantizeCheckpoint(src, mkdtempSync(join(tmpdir(), 'troupe-fp8-x-')), 'some' as never), { message: /--scheme must be "meta" or "all"/ });
});
