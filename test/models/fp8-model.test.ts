// FP8 models end to end on the tiny preset and the trained demo model: each checkpoint format and online
// quantization load with their linears resident as FP8 (dtypes and bytes
// asserted from the native model), results against bf16 within tolerances
// measured here, batch invariance, and malformed checkpoints refused.
import test from 'ava';
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { ISAS, loadNative } from '../../native/index.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { ModelLoadError, ModelOptionError } from '../../models/errors.js';
import { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';
import { quantizeCheckpoint } from '../../models/quantization/quantize.js';
import type { NativeModelStats } from '../../native/model-raw.js';
import { Tokenizer } from '../../actors/tokenizer/tokenizer.js';
import { ensureDefaultModel } from '../../cli/default-model.js';
import { loadTasks } from '../../bench/eval/tasks.js';
import { compressedTensorsConfig, writeFp8Checkpoint } from './fp8-checkpoints.js';
import { bitsEqual, generatedModel, randomTokens, teacherForced, tempDir } from './helpers.js';

const BLOCKS = 64;

/** Prompt log-probabilities of tokens[i + 1] and the top-2 at each of the first n positions, one step. */
async function positions(model: LlamaModel, tokens: number[]): Promise<{ lp: Float32Array; top1: number[]; gap: number[] }> {
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const table = pages.ensure([], tokens.length, model.kvCache.blockSize);
  const [r] = await model.step([{ tokens, cachedTokens: 0, blockTable: table, promptLogprobs: { targets: [...tokens.slice(1), -1], topN: 2 } }]);
  const n = tokens.length - 1;
  const top = r!.promptTop!.slice(0, n);
  return { lp: r!.promptLogprobs!.slice(0, n), top1: top.map((l) => l[0]!.id), gap: top.map((l) => l[0]!.logprob - l[1]!.logprob) };
}

function linearBytes(model: LlamaModel, perWeight: (kind: 'qkv' | 'o' | 'gateUp' | 'down' | 'lmHead', layer: number) => number): number {
  const c = model.config;
  const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
  let total = c.vocabSize * H * perWeight('lmHead', -1);
  for (let l = 0; l < c.numLayers; l++)
    total += (c.numHeads + 2 * c.numKvHeads) * D * H * perWeight('qkv', l) + H * c.numHeads * D * perWeight('o', l) + 2 * I * H * perWeight('gateUp', l) + H * I * perWeight('down', l);
  return total;
}

function dtypeBytes(stats: NativeModelStats) {
  return (kind: 'qkv' | 'o' | 'gateUp' | 'down' | 'lmHead', l: number): number => {
    const d = kind === 'lmHead' ? stats.linearDtypes.lmHead : stats.linearDtypes[kind][l]!;
    return d === 'fp8_e4m3' ? 1 : d === 'bf16' ? 2 : 4;
  };
}

test('FBGEMM "all" on tiny: every linear and the lm head resident as FP8; 1000 teacher-forced positions against bf16', async (t) => {
  const src = generatedModel('tiny');
  const dir = tempDir('fp8-all');
  quantizeCheckpoint(src, dir, 'all');
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  const fp8 = LlamaModel.load(dir, { numBlocks: BLOCKS });
  t.teardown(async () => {
    await bf16.close();
    await fp8.close();
  });
  const s = fp8.stats();
  const c = fp8.config;
  t.true([...s.linearDtypes.qkv, ...s.linearDtypes.o, ...s.linearDtypes.gateUp, ...s.linearDtypes.down, s.linearDtypes.lmHead].every((d) => d === 'fp8_e4m3'));
  t.truthy(s.fp8Kernel);
  const fp8Bytes = linearBytes(fp8, () => 1);
  t.is(s.linearWeightBytes, fp8Bytes, 'one byte per linear weight');
  t.is(bf16.stats().linearWeightBytes, 2 * fp8Bytes);
  // Resident: the bf16 embedding, the e4m3 codes, one fp32 scale per output channel, fp32 norms.
  const channels = c.numLayers * ((c.numHeads + 2 * c.numKvHeads) * c.headDim + 2 * c.hiddenSize + 2 * c.intermediateSize) + c.vocabSize;
  t.is(fp8.residentWeightBytes, c.vocabSize * c.hiddenSize * 2 + fp8Bytes + 4 * channels + 4 * (2 * c.numLayers + 1) * c.hiddenSize);

  // Accuracy is measured on the trained demo model below: random weights give near-tied tops
  // (median top-1/top-2 gap 0.36 nat), so top-1 agreement there says little. Here, only that
  // FP8 stays near bf16 (measured mean 0.27, max 2.7 on seed 1, tokens seed 3).
  const tokens = randomTokens(1001, c.vocabSize, 3);
  const a = await positions(bf16, tokens);
  const b = await positions(fp8, tokens);
  let sum = 0;
  for (let i = 0; i < 1000; i++) sum += Math.abs(a.lp[i]! - b.lp[i]!);
  t.true(sum / 1000 <= 0.35, `mean |diff| ${sum / 1000}`);
});

test('FBGEMM "all" on the trained demo model: top-1 agreement with bf16 >= 95% over 1000 teacher-forced held-out positions', async (t) => {
  const src = ensureDefaultModel({ XDG_CACHE_HOME: tempDir('fp8-demo-cache') }).dir;
  const dir = tempDir('fp8-demo-all');
  quantizeCheckpoint(src, dir, 'all');
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  const fp8 = LlamaModel.load(dir, { numBlocks: BLOCKS });
  t.teardown(async () => {
    await bf16.close();
    await fp8.close();
  });
  // held-out text the model never trained on (models/demo/heldout.json), with its BOS
  const tokenizer = Tokenizer.load(src);
  const text = loadTasks().perplexity.join('\n');
  const tokens = [tokenizer.bosTokenId!, ...tokenizer.encode(text)].slice(0, 1001);
  t.is(tokens.length, 1001);
  const a = await positions(bf16, tokens);
  const b = await positions(fp8, tokens);
  let sum = 0, worst = 0, agree = 0;
  for (let i = 0; i < 1000; i++) {
    const d = Math.abs(a.lp[i]! - b.lp[i]!);
    sum += d;
    worst = Math.max(worst, d);
    if (a.top1[i] === b.top1[i]) agree++;
  }
  t.log(`demo model, fp8 all against bf16: top-1 agreement ${agree / 10}%, mean |logprob diff| ${(sum / 1000).toFixed(4)}, max ${worst.toFixed(3)}`);
  // measured (avx512bf16): agreement 95.5%, mean 0.024, max 0.15
  t.true(agree >= 950, `top-1 agreement ${agree} / 1000`);
  t.true(sum / 1000 <= 0.1, `mean |diff| ${sum / 1000}`);
});

test('FBGEMM "meta" keeps attention, the first and last layers and the lm head in bf16', async (t) => {
  const src = generatedModel('tiny', 1, 'bf16', { layers: 4 });
  const dir = tempDir('fp8-meta');
  quantizeCheckpoint(src, dir, 'meta');
  const model = LlamaModel.load(dir, { numBlocks: BLOCKS });
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  t.teardown(async () => {
    await model.close();
    await bf16.close();
  });
  const d = model.stats().linearDtypes;
  t.deepEqual(d.gateUp, ['bf16', 'fp8_e4m3', 'fp8_e4m3', 'bf16']);
  t.deepEqual(d.down, ['bf16', 'fp8_e4m3', 'fp8_e4m3', 'bf16']);
  t.deepEqual([...d.qkv, ...d.o, d.lmHead], Array(9).fill('bf16'));
  t.is(model.stats().linearWeightBytes, linearBytes(model, dtypeBytes(model.stats())));
  const tokens = randomTokens(300, model.config.vocabSize, 4);
  const a = await teacherForced(bf16, tokens), b = await teacherForced(model, tokens);
  let sum = 0;
  for (let i = 0; i < a.logprobs.length; i++) sum += Math.abs(a.logprobs[i]! - b.logprobs[i]!);
  t.true(sum / a.logprobs.length <= 0.2, `mean |diff| ${sum / a.logprobs.length}`); // measured 0.13
  t.log(`meta: mean |logprob diff| ${(sum / a.logprobs.length).toFixed(3)}`);
});

test('compressed-tensors (channel, dynamic, ignore lm_head) equals online --quantization fp8 bit for bit', async (t) => {
  const src = generatedModel('tiny');
  const ct = writeFp8Checkpoint(src, { quantizationConfig: compressedTensorsConfig('channel', true, ['lm_head']), quantized: (m) => m !== 'lm_head', weightScale: 'channel' });
  const a = LlamaModel.load(ct, { numBlocks: BLOCKS });
  const b = LlamaModel.load(src, { numBlocks: BLOCKS, quantization: 'fp8' });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  for (const m of [a, b]) {
    const d = m.stats().linearDtypes;
    t.deepEqual([...d.qkv, ...d.o, ...d.gateUp, ...d.down], Array(8).fill('fp8_e4m3'));
    t.is(d.lmHead, 'bf16');
  }
  t.is(a.stats().linearWeightBytes, b.stats().linearWeightBytes);
  const tokens = randomTokens(120, a.config.vocabSize, 5);
  t.true(bitsEqual((await teacherForced(a, tokens)).logprobs, (await teacherForced(b, tokens)).logprobs));
});

test('per-tensor scales with static input scales (compressed-tensors and fp8) load as FP8 and use the input scale', async (t) => {
  const src = generatedModel('tiny');
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  t.teardown(() => bf16.close());
  const tokens = randomTokens(200, bf16.config.vocabSize, 6);
  const ref = (await teacherForced(bf16, tokens)).logprobs;
  const quantized = (m: string): boolean => m !== 'lm_head' && !m.startsWith('model.layers.0.self_attn');
  const variants = {
    'compressed-tensors static': writeFp8Checkpoint(src, { quantizationConfig: compressedTensorsConfig('tensor', false, ['lm_head', 're:.*layers\\.0\\.self_attn.*']), quantized, weightScale: 'tensor', inputScale: 0.02 }),
    'fp8 static': writeFp8Checkpoint(src, { quantizationConfig: { quant_method: 'fp8', activation_scheme: 'static', ignored_layers: ['lm_head', 'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.0.self_attn.o_proj'] }, quantized, weightScale: 'tensor', inputScale: 0.02 }),
    'fp8 dynamic': writeFp8Checkpoint(src, { quantizationConfig: { quant_method: 'fp8', activation_scheme: 'dynamic', ignored_layers: ['lm_head'] }, quantized, weightScale: 'tensor' }),
  };
  const results: Record<string, Float32Array> = {};
  for (const [name, dir] of Object.entries(variants)) {
    const m = LlamaModel.load(dir, { numBlocks: BLOCKS });
    const d = m.stats().linearDtypes;
    t.deepEqual([d.qkv, d.o, d.gateUp, d.down, d.lmHead], [['bf16', 'fp8_e4m3'], ['bf16', 'fp8_e4m3'], ['fp8_e4m3', 'fp8_e4m3'], ['fp8_e4m3', 'fp8_e4m3'], 'bf16'], name);
    results[name] = (await teacherForced(m, tokens)).logprobs;
    await m.close();
    let sum = 0;
    for (let i = 0; i < ref.length; i++) sum += Math.abs(results[name]![i]! - ref[i]!);
    t.log(`${name}: mean |logprob diff| vs bf16 ${(sum / ref.length).toFixed(3)}`);
    t.true(sum / ref.length <= 0.35, `${name}: mean |diff| ${sum / ref.length}`); // measured 0.15-0.25
  }
  t.true(bitsEqual(results['compressed-tensors static']!, results['fp8 static']!), 'the two static formats hold the same tensors');
  t.false(bitsEqual(results['fp8 static']!, results['fp8 dynamic']!), 'static input scales change the arithmetic');
});

test('FP8 stays batch invariant: alone, batched with others and chunked give the same bits', async (t) => {
  const src = generatedModel('tiny');
  const dir = tempDir('fp8-bi');
  quantizeCheckpoint(src, dir, 'all');
  const model = LlamaModel.load(dir, { numBlocks: 256 });
  t.teardown(() => model.close());
  const V = model.config.vocabSize;
  const tokens = randomTokens(90, V, 7);
  const whole = (await teacherForced(model, tokens)).logprobs;
  t.true(bitsEqual(whole, (await teacherForced(model, tokens, { chunk: 7 })).logprobs), 'chunked prefill of 7');
  // The same prompt next to two others in one step.
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const others = [randomTokens(40, V, 8), randomTokens(13, V, 9)];
  const seqs = [tokens, ...others].map((toks) => ({ tokens: toks, cachedTokens: 0, blockTable: pages.ensure([], toks.length, model.kvCache.blockSize), promptLogprobs: { targets: [...toks.slice(1), -1] } }));
  const [r] = await model.step(seqs);
  t.true(bitsEqual(r!.promptLogprobs!.slice(0, tokens.length - 1), whole), 'batched with two other prompts');
});

test('FP8 runs on every ISA the CPU has, close to bf16 on that ISA', async (t) => {
  const src = generatedModel('tiny');
  const dir = tempDir('fp8-isa');
  quantizeCheckpoint(src, dir, 'all');
  const tokens = randomTokens(100, 128256, 10);
  for (const isa of ISAS.filter((i) => loadNative().availableIsas().includes(i))) {
    const a = LlamaModel.load(src, { numBlocks: BLOCKS, isa });
    const b = LlamaModel.load(dir, { numBlocks: BLOCKS, isa });
    const x = (await teacherForced(a, tokens)).logprobs, y = (await teacherForced(b, tokens)).logprobs;
    // The amx path keeps avx512bf16's FP8 GEMMs (native/README.md).
    t.is(b.stats().fp8Kernel?.startsWith(isa === 'amx' ? 'avx512bf16' : isa), true, `${isa}: kernel ${b.stats().fp8Kernel}`);
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]! - y[i]!);
    t.true(sum / x.length <= 0.35, `${isa}: mean |diff| ${sum / x.length}`);
    await a.close();
    await b.close();
  }
});

test('malformed FP8 checkpoints and options are refused, naming what is wrong', (t) => {
  const src = generatedModel('tiny');
  const fbgemm = { quant_method: 'fbgemm_fp8', activation_scale_ub: 1200, modules_to_not_convert: ['lm_head'] };
  const notHead = (m: string): boolean => m !== 'lm_head';
  const refuse = (dir: string, pattern: RegExp, options = {}): void => {
    const err = t.throws(() => LlamaModel.load(dir, { numBlocks: BLOCKS, ...options }), { message: pattern });
    t.true(err instanceof ModelLoadError || err instanceof ModelOptionError, String(err));
  };
  const down = 'model.layers.1.mlp.down_proj';
  refuse(writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: notHead, weightScale: 'channel', edit: (m) => {
    const s = m.get(`${down}.weight_scale`)!;
    m.set(`${down}.weight_scale`, { ...s, shape: [s.shape[0]! / 2, 2] });
  } }), /tensor model\.layers\.1\.mlp\.down_proj\.weight_scale: scale shape \[16, 2\] does not fit: fbgemm_fp8 needs \[32, 1\] or \[32\]/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: notHead, weightScale: 'channel', edit: (m) => void m.delete(`${down}.weight_scale`) }), /down_proj\.weight_scale: tensor is missing/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: notHead, weightScale: 'channel', edit: (m) => {
    new Float32Array(m.get(`${down}.weight_scale`)!.data.buffer)[3] = -1;
  } }), /scale -1 is not a finite positive number/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: (m) => notHead(m) && !m.endsWith('layers.0.self_attn.k_proj'), weightScale: 'channel' }), /fused parts .*q_proj.*k_proj.*v_proj must all be FP8 or all unquantized/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: notHead, weightScale: 'channel', edit: (m) => void (m.get(`${down}.weight`)!.dtype = 'F8_E5M2') }), /F8_E5M2 weights are not supported/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: { quant_method: 'fp8', activation_scheme: 'static' }, quantized: notHead, weightScale: 'tensor' }), /input_scale: tensor is missing: fp8 with static activations/);
  refuse(writeFp8Checkpoint(src, { quantizationConfig: compressedTensorsConfig('tensor', true, []), quantized: notHead, weightScale: 'channel' }), /needs \[\] or \[1\] \(one scale per tensor\)/);
  const fp8 = writeFp8Checkpoint(src, { quantizationConfig: fbgemm, quantized: notHead, weightScale: 'channel' });
  refuse(fp8, /--quantization: 'fp8' does not match the checkpoint's quant_method 'fbgemm_fp8'/, { quantization: 'fp8' });
  refuse(fp8, /FP8 weights \(fbgemm_fp8\) run in bfloat16 mode, not float32/, { dtype: 'float32' });
  refuse(src, /--quantization: unknown method 'int4'/, { quantization: 'int4' });
  refuse(src, /--quantization: FP8 weights run in bfloat16 mode/, { quantization: 'fp8', dtype: 'float32' });
  // FP8 tensors with the quantization_config removed.
  const config = JSON.parse(readFileSync(join(fp8, 'config.json'), 'utf8'));
  delete config.quantization_config;
  writeFileSync(join(fp8, 'config.json'), JSON.stringify(config));
  refuse(fp8, /F8_E4M3 weights, but config.json has no quantization_config/);
  refuse(fp8, /holds FP8 tensors but config.json has no quantization_config/, { quantization: 'fp8' });
});

test('troupe quantize copies 1-D tensors longer than its 256-row block (norms of real models)', (t) => {
  const bits = Uint16Array.from({ length: 2048 }, (_, i) => 0x3f80 + (i % 100));
  const src = writeFp8Checkpoint(generatedModel('tiny'), { quantized: () => false, weightScale: 'channel', edit: (m) => void m.set('model.extra_norm.weight', { dtype: 'BF16', shape: [2048], data: new Uint8Array(bits.buffer) }) });
  const out = tempDir('fp8-q1d');
  quantizeCheckpoint(src, out, 'all');
  const e = Checkpoint.open(out).entry('model.extra_norm.weight');
  t.deepEqual([e.dtype, e.shape], ['BF16', [2048]]);
  t.deepEqual(new Uint16Array(Uint8Array.from(readFileSync(e.file).subarray(e.begin, e.end)).buffer), bits);
});
