// Loading: HF layouts (single file, shards + index), dtypes, slices, and a
// clear error naming the file (and tensor) for each way a checkpoint can be
// wrong: missing file, unsupported architecture or dtype, shape mismatch,
// truncated or corrupt header, truncated data.
import test from 'ava';
import { cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint } from '../../models/checkpoint.js';
import { bf16ToFp32 } from '../../models/dtype.js';
import { ModelLoadError } from '../../models/errors.js';
import { LlamaModel } from '../../models/llama.js';
import { readSafetensorsHeader, readTensorInto } from '../../models/safetensors.js';
import { GOLDEN_DIR, bitsEqual, generatedModel, randomTokens, teacherForced, tempDir } from './helpers.js';

/** A writable copy of the golden checkpoint. */
function copyOfGolden(): string {
  const dir = tempDir('load');
  cpSync(GOLDEN_DIR, dir, { recursive: true });
  return dir;
}

/** Writes a safetensors file from a header object and data bytes. */
function writeSafetensors(path: string, header: object, data: Uint8Array, headerLenOverride?: number): void {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerLenOverride ?? json.length));
  writeFileSync(path, Buffer.concat([len, json, data]));
}

function loadError(t: import('ava').ExecutionContext, dir: string, message: RegExp, file: string, tensor?: string): void {
  const err = t.throws(() => LlamaModel.load(dir, { numBlocks: 4 }), { instanceOf: ModelLoadError });
  t.regex(err!.message, message);
  t.is(err!.file, join(dir, file));
  t.true(err!.message.includes(join(dir, file)), 'the message names the file');
  if (tensor !== undefined) {
    t.is(err!.tensor, tensor);
    t.true(err!.message.includes(tensor), 'the message names the tensor');
  }
}

test('a missing directory, config.json or model.safetensors names the missing path', (t) => {
  const dir = copyOfGolden();
  rmSync(join(dir, 'model.safetensors'));
  loadError(t, dir, /model\.safetensors: file is missing \(and there is no model\.safetensors\.index\.json/, 'model.safetensors');
  rmSync(join(dir, 'config.json'));
  loadError(t, dir, /config\.json: file is missing/, 'config.json');
  const err = t.throws(() => LlamaModel.load(join(dir, 'nope')), { instanceOf: ModelLoadError });
  t.regex(err!.message, /nope: model directory is missing/);
});

test('an unsupported architecture, rope scaling or activation is refused naming config.json', (t) => {
  const dir = copyOfGolden();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['MistralForCausalLM'] }));
  loadError(t, dir, /unsupported architecture "MistralForCausalLM" \(Troupe runs LlamaForCausalLM\)/, 'config.json');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }));
  loadError(t, dir, /unsupported rope_scaling type "yarn"/, 'config.json');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_act: 'gelu' }));
  loadError(t, dir, /unsupported hidden_act "gelu"/, 'config.json');
  writeFileSync(join(dir, 'config.json'), '{ not json');
  loadError(t, dir, /config\.json: not valid JSON/, 'config.json');
});

test('a shape that disagrees with config.json names the file and the tensor', (t) => {
  const dir = copyOfGolden();
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: 200 }));
  loadError(t, dir, /shape mismatch: the file has \[192, 64\], config\.json implies \[200, 64\]/, 'model.safetensors', 'model.layers.0.mlp.gate_proj.weight');
});

test('an unsupported dtype, a missing tensor, a corrupt or truncated header, truncated data: each named', (t) => {
  const dir = copyOfGolden();
  const file = join(dir, 'model.safetensors');
  const original = readSafetensorsHeader(file);
  const bytes = readFileSync(file);
  const data = bytes.subarray(original.dataStart);
  const header = JSON.parse(bytes.subarray(8, original.dataStart).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;

  const norm = 'model.layers.0.input_layernorm.weight';
  writeSafetensors(file, { ...header, [norm]: { ...header[norm]!, dtype: 'I16' } }, data);
  loadError(t, dir, /unsupported dtype I16 \(Troupe loads BF16, F16 and F32\)/, 'model.safetensors', norm);

  const { [norm]: _dropped, ...without } = header;
  writeSafetensors(file, without, data);
  loadError(t, dir, /tensor is missing/, 'model.safetensors', norm);

  writeSafetensors(file, header, data, 10_000_000);
  loadError(t, dir, /truncated safetensors header: it claims 10000000 bytes, the file has \d+ after the length/, 'model.safetensors');

  writeFileSync(file, bytes.subarray(0, 5));
  loadError(t, dir, /truncated or corrupt safetensors header: file has 5 bytes/, 'model.safetensors');

  const garbled = Buffer.from(bytes);
  garbled.write('#', 8); // the header's opening brace
  writeFileSync(file, garbled);
  loadError(t, dir, /corrupt safetensors header: not valid JSON/, 'model.safetensors');

  writeSafetensors(file, { ...header, [norm]: { ...header[norm]!, data_offsets: [0, 7] } }, data);
  loadError(t, dir, /corrupt safetensors header: 7 data bytes for shape \[64\] of BF16, which needs 128/, 'model.safetensors', norm);

  writeFileSync(file, bytes);
  truncateSync(file, bytes.length - 1000);
  loadError(t, dir, /truncated: the tensor's data ends at byte \d+ of the data section, which has \d+ bytes/, 'model.safetensors', 'lm_head.weight'); // the last tensor in the file
});

test('sharded checkpoints: the index maps tensors to shards; a missing shard or tensor is named', async (t) => {
  const single = generatedModel('tiny', 9);
  const sharded = generatedModel('tiny', 9, 'bf16', { maxShardBytes: 3_000_000 });
  const ckpt = Checkpoint.open(sharded);
  t.true(ckpt.files.length >= 2, `${ckpt.files.length} shards`);
  t.regex(ckpt.files[0]!, /model-00001-of-0000\d\.safetensors$/);
  // Same weights, same results.
  const tokens = randomTokens(20, 128256, 3);
  const a = LlamaModel.load(single, { numBlocks: 8 }), b = LlamaModel.load(sharded, { numBlocks: 8 });
  t.true(bitsEqual((await teacherForced(a, tokens)).logprobs, (await teacherForced(b, tokens)).logprobs));
  await a.close();
  await b.close();

  const dir = tempDir('shards');
  cpSync(sharded, dir, { recursive: true });
  rmSync(ckpt.files[1]!.replace(sharded, dir));
  const missing = ckpt.files[1]!.replace(sharded, dir);
  const err = t.throws(() => LlamaModel.load(dir), { instanceOf: ModelLoadError });
  t.is(err!.file, missing);
  t.regex(err!.message, /file is missing/);
});

test('tensors read whole or as a rank\'s slice of rows or columns, converted to fp32 or kept bf16', (t) => {
  const ckpt = Checkpoint.open(GOLDEN_DIR);
  const entry = ckpt.tensor('model.layers.0.mlp.down_proj.weight', [64, 192]);
  const whole = new Uint16Array(64 * 192);
  readTensorInto(entry, whole);
  const rows = new Uint16Array(16 * 192);
  readTensorInto(entry, rows, 0, { rows: [32, 48] });
  t.deepEqual(rows, whole.subarray(32 * 192, 48 * 192));
  const cols = new Float32Array(64 * 48);
  readTensorInto(entry, cols, 0, { cols: [96, 144] });
  for (let r = 0; r < 64; r++) for (let c = 0; c < 48; c++) t.is(cols[r * 48 + c], bf16ToFp32(whole[r * 192 + 96 + c]!));
  t.throws(() => readTensorInto(entry, rows, 0, { rows: [60, 70] }), { instanceOf: ModelLoadError, message: /slice rows \[60, 70\) .* is outside shape \[64, 192\]/ });
});

test('weights live in anonymous native memory, fused: q/k/v and gate/up read once each', (t) => {
  const model = LlamaModel.load(GOLDEN_DIR, { dtype: 'bfloat16', numBlocks: 4 });
  const c = model.config;
  const H = c.hiddenSize, I = c.intermediateSize, D = c.headDim;
  const matrices = c.numLayers * ((c.numHeads + 2 * c.numKvHeads) * D * H + H * c.numHeads * D + 2 * I * H + H * I) + 2 * c.vocabSize * H;
  const norms = (2 * c.numLayers + 1) * H;
  t.is(model.residentWeightBytes, 2 * matrices + 4 * norms);
  const f32 = LlamaModel.load(GOLDEN_DIR, { dtype: 'float32', numBlocks: 4 });
  t.is(f32.residentWeightBytes, 4 * matrices + 4 * norms);
});

test('weightMemory \'mmap\' reads tensors usable as stored through the file mapping, with identical results', async (t) => {
  const tokens = randomTokens(30, 1024, 4);
  const anon = LlamaModel.load(GOLDEN_DIR, { numBlocks: 8 });
  const mapped = LlamaModel.load(GOLDEN_DIR, { numBlocks: 8, weightMemory: 'mmap' });
  const c = mapped.config;
  const H = c.hiddenSize;
  // embed, lm_head, o_proj and down_proj of the bf16 checkpoint are used in place; q/k/v and gate/up are fused copies.
  const inPlace = 2 * (2 * c.vocabSize * H + c.numLayers * (H * c.numHeads * c.headDim + H * c.intermediateSize));
  t.is(mapped.mappedWeightBytes, inPlace);
  t.is(anon.mappedWeightBytes, 0);
  t.is(mapped.residentWeightBytes, anon.residentWeightBytes - inPlace);
  t.true(bitsEqual((await teacherForced(anon, tokens)).logprobs, (await teacherForced(mapped, tokens)).logprobs));
  const f32 = LlamaModel.load(GOLDEN_DIR, { numBlocks: 8, weightMemory: 'mmap', dtype: 'float32' });
  t.is(f32.mappedWeightBytes, 0, 'a bf16 checkpoint in float32 mode is converted, never mapped');
  t.throws(() => LlamaModel.load(GOLDEN_DIR, { weightMemory: 'file' as never }), { message: /weightMemory: must be 'anonymous' or 'mmap'/ });
});
