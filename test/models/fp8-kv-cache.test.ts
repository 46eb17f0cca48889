// The FP8 KV cache end to end on tiny: one byte per element (so the planner
// fits twice the tokens), log-probabilities against the bf16 cache within
// tolerances measured here, batch / chunk invariance, per-layer k / v scales
// from the checkpoint (1.0 with a warning when it has none), bad options.
import test from 'ava';
import { planKvCache, kvBytesPerToken } from '../../actors/kv-cache/kv-plan.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { ModelLoadError, ModelOptionError } from '../../models/errors.js';
import { LlamaModel } from '../../models/llama.js';
import { resolveKvCacheDtype } from '../../models/options.js';
import { writeFp8Checkpoint } from './fp8-checkpoints.js';
import { bitsEqual, generatedModel, randomTokens, teacherForced } from './helpers.js';

const BLOCKS = 64;

function diff(a: Float32Array, b: Float32Array): { mean: number; max: number } {
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

test('fp8 KV cache on tiny: half the bytes, close to the bf16 cache, chunking does not change a bit', async (t) => {
  const src = generatedModel('tiny');
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  t.teardown(() => bf16.close());
  const tokens = randomTokens(500, bf16.config.vocabSize, 3);
  const ref = (await teacherForced(bf16, tokens)).logprobs;
  // Tolerances from measurement (seed 1, tokens seed 3): e4m3 with scale 1.0 mean 0.091 / max 0.68,
  // e5m2 mean 0.174 / max 1.19 (two mantissa bits).
  const bounds = { fp8: { mean: 0.13, max: 1.0 }, fp8_e5m2: { mean: 0.25, max: 1.6 } };
  for (const kv of ['fp8', 'fp8_e5m2'] as const) {
    const m = LlamaModel.load(src, { numBlocks: BLOCKS, kvCacheDtype: kv });
    t.is(m.kvCache.dtype, kv === 'fp8' ? 'fp8_e4m3' : 'fp8_e5m2');
    t.is(m.kvCache.bytes * 2, bf16.kvCache.bytes, 'one byte per element');
    t.is(m.stats().kvCacheBytes, m.kvCache.bytes);
    t.is(m.warnings.length, kv === 'fp8' ? 1 : 0);
    if (kv === 'fp8') t.regex(m.warnings[0]!, /no k_scale \/ v_scale tensors; using scale 1\.0/);
    const lp = (await teacherForced(m, tokens)).logprobs;
    const d = diff(lp, ref);
    t.log(`${kv}: |logprob - bf16 KV| mean ${d.mean.toFixed(3)}, max ${d.max.toFixed(3)}`);
    t.true(d.mean <= bounds[kv].mean && d.max <= bounds[kv].max, `${kv}: mean ${d.mean} max ${d.max}`);
    t.true(bitsEqual(lp, (await teacherForced(m, tokens, { chunk: 37 })).logprobs), `${kv}: chunked prefill of 37`);
    await m.close();
  }
});

test('fp8 KV cache reads per-layer k_scale / v_scale from the checkpoint; partial or bad scales are refused', async (t) => {
  const src = generatedModel('tiny');
  const withScales = (edit: (m: Map<string, { dtype: string; shape: number[]; data: Uint8Array }>) => void) =>
    writeFp8Checkpoint(src, { quantized: () => false, weightScale: 'channel', edit });
  const scalar = (v: number) => ({ dtype: 'F32', shape: [] as number[], data: new Uint8Array(new Float32Array([v]).buffer) });
  const scaled = withScales((m) => {
    for (const l of [0, 1]) {
      m.set(`model.layers.${l}.self_attn.k_scale`, scalar(0.02));
      m.set(`model.layers.${l}.self_attn.v_scale`, scalar(0.01));
    }
  });
  const tokens = randomTokens(200, 128256, 4);
  const bf16 = LlamaModel.load(src, { numBlocks: BLOCKS });
  const one = LlamaModel.load(src, { numBlocks: BLOCKS, kvCacheDtype: 'fp8' });
  const cal = LlamaModel.load(scaled, { numBlocks: BLOCKS, kvCacheDtype: 'fp8_e4m3' });
  t.teardown(async () => {
    await bf16.close();
    await one.close();
    await cal.close();
  });
  t.deepEqual(cal.warnings, []);
  const ref = (await teacherForced(bf16, tokens)).logprobs;
  const a = (await teacherForced(one, tokens)).logprobs, b = (await teacherForced(cal, tokens)).logprobs;
  t.false(bitsEqual(a, b), 'the scales change the codes');
  const d = diff(b, ref);
  t.log(`k_scale 0.02 / v_scale 0.01: |logprob - bf16 KV| mean ${d.mean.toFixed(3)}, max ${d.max.toFixed(3)}`);
  t.true(d.mean <= 0.13, `mean ${d.mean}`);
  const partial = withScales((m) => m.set('model.layers.0.self_attn.k_scale', scalar(0.02)));
  t.throws(() => LlamaModel.load(partial, { numBlocks: BLOCKS, kvCacheDtype: 'fp8' }), { instanceOf: ModelLoadError, message: /v_scale: tensor is missing|for 1 of 2 layers/ });
  const negative = withScales((m) => {
    for (const l of [0, 1]) for (const w of ['k', 'v']) m.set(`model.layers.${l}.self_attn.${w}_scale`, scalar(l === 1 && w === 'v' ? -1 : 0.02));
  });
  t.throws(() => LlamaModel.load(negative, { numBlocks: BLOCKS, kvCacheDtype: 'fp8' }), { instanceOf: ModelLoadError, message: /layers\.1\.self_attn\.v_scale: KV cache scale -1 is not a finite positive number/ });
});

test('the KV planner counts one byte per element with an fp8 cache: twice the tokens in the same budget', (t) => {
  const config = Checkpoint.open(generatedModel('tiny')).config;
  t.is(kvBytesPerToken(config, 'bfloat16', 'fp8_e4m3') * 2, kvBytesPerToken(config, 'bfloat16'));
  const bf16 = planKvCache({ config, dtype: 'bfloat16', memory: '64MiB', blockSize: 32, maxModelLen: 4096 });
  const fp8 = planKvCache({ config, dtype: 'bfloat16', kvCacheDtype: 'fp8_e4m3', memory: '64MiB', blockSize: 32, maxModelLen: 4096 });
  t.is(fp8.tokens, 2 * bf16.tokens);
  t.regex(fp8.summary, /^KV cache \(fp8_e4m3\): /);
  t.is(resolveKvCacheDtype('fp8'), 'fp8_e4m3');
  t.is(resolveKvCacheDtype(undefined), 'auto');
  t.throws(() => resolveKvCacheDtype('int8'), { instanceOf: ModelOptionError, message: /--kv-cache-dtype: unknown KV cache dtype 'int8' \(expected auto, fp8, fp8_e4m3 or fp8_e5m2\)/ });
});
