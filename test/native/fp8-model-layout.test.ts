// The FP8 model step on shapes where every FP8 path of the step is taken
// (K segments of o / down holding whole 64-code chunks, the prefill strips,
// the small-batch and one-row blocks, the lm head's vocabulary tiles): the
// fastest kernel (VBMI on avx512bf16, F16C on avx2; both reorder or recode the
// weights at load) gives the same logits, bit for bit, as the portable table
// kernel on the same ISA; and weights marked as reordered are reused, never
// reordered twice.
import test, { type ExecutionContext } from 'ava';
import { loadNative, type Isa } from '../../native/index.js';
import type { NativeFp8Linear, NativeModelDesc } from '../../native/model-raw.js';
import { packStep } from '../../models/batch.js';
import { testWhen } from './helpers.js';
import { rng } from './random.js';

const native = loadNative();
const vbmi = native.availableIsas().includes('avx512bf16') && native.cpuFeatures().avx512vbmi;
const avx2 = native.availableIsas().includes('avx2');
const H = 512, L = 2, HEADS = 8, KV = 2, D = 64, I = 1024, V = 4096, BS = 32;

function fp8(N: number, K: number, next: () => number): NativeFp8Linear {
  // Mostly normal codes, ~1% of them zero or subnormal (the fix-up path).
  const codes = new Uint8Array(N * K).map(() => (next() < 0.5 ? 0x80 : 0) | (next() < 0.01 ? Math.floor(next() * 8) : (Math.floor(next() * 10) + 3) << 3 | Math.floor(next() * 8)));
  return { fp8: codes, scale: Float32Array.from({ length: N }, () => (0.5 + next()) / (448 * Math.sqrt(K))), activationUb: 1200 };
}

// intermediate 1030: gate and up each end in a block of 2 rows of the avx2 layout's 4-row
// blocks, and six of down's eight K segments in a tail.
function desc(seed: number, fp8Kernel: 'auto' | 'table', isa: Isa = 'avx512bf16', intermediate = I): NativeModelDesc {
  const next = rng(seed);
  const norm = () => Float32Array.from({ length: H }, () => 0.5 + next());
  const embed = new Uint16Array(V * H).map(() => 0x3c00 | Math.floor(next() * 0x300) | (next() < 0.5 ? 0x8000 : 0)); // |x| in [2^-7, 2^-5)
  return {
    isa, threads: 2, dtype: 'bfloat16', hidden: H, layers: L, heads: HEADS, kvHeads: KV, headDim: D, intermediate, vocab: V,
    rmsEps: 1e-5, invFreq: Float32Array.from({ length: D / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / D)), blockSize: BS, numBlocks: 16, fp8Kernel,
    embed, lmHead: fp8(V, H, next), finalNorm: norm(),
    layerWeights: Array.from({ length: L }, () => ({
      inputNorm: norm(), qkv: fp8((HEADS + 2 * KV) * D, H, next), o: fp8(H, HEADS * D, next), postNorm: norm(), gateUp: fp8(2 * intermediate, H, next), down: fp8(H, intermediate, next),
    })),
  };
}

async function fastEqualsTable(t: ExecutionContext, isa: Isa, kernels: [string, string], intermediate?: number): Promise<void> {
  const m = native.model;
  const fast = m.modelCreate(desc(3, 'auto', isa, intermediate));
  const table = m.modelCreate(desc(3, 'table', isa, intermediate));
  t.is(m.modelStats(fast).fp8Kernel, kernels[0]);
  t.is(m.modelStats(table).fp8Kernel, kernels[1]);
  const next = rng(9);
  const prompt = (n: number) => Array.from({ length: n }, () => Math.floor(next() * V));
  const greedy = { params: { temperature: 0 }, seed: 0, outputIndex: 0 };
  const steps = [
    [{ tokens: prompt(70), cachedTokens: 0, blockTable: [0, 1, 2], sample: greedy }], // M = 70: prefill strips
    [{ tokens: prompt(1), cachedTokens: 70, blockTable: [0, 1, 2], sample: greedy }], // M = 1
    Array.from({ length: 2 }, (_, i) => ({ tokens: prompt(1), cachedTokens: 0, blockTable: [8 + i], sample: greedy })), // M = 2
    Array.from({ length: 5 }, (_, i) => ({ tokens: prompt(3), cachedTokens: 0, blockTable: [3 + i], sample: greedy })), // M = 15
  ];
  for (const seqs of steps) {
    const { input } = packStep(seqs, BS);
    input.returnLogits = true;
    const a = await m.modelStep(fast, input), b = await m.modelStep(table, input);
    t.deepEqual(new Uint32Array(a.logits!.buffer), new Uint32Array(b.logits!.buffer), `${input.tokens.length} tokens`);
    t.true(a.logits!.every((x) => Number.isFinite(x)));
  }
  m.modelRelease(fast);
  m.modelRelease(table);
}

testWhen(vbmi, 'CPU lacks avx512bf16 + avx512vbmi: the reordered layout is not used')('FP8 model step: the VBMI kernel (weights reordered at load) equals the table kernel bit for bit', async (t) => {
  await fastEqualsTable(t, 'avx512bf16', ['avx512bf16-vbmi', 'avx512bf16-table']);
});

testWhen(avx2, 'CPU lacks avx2')('FP8 model step: the avx2 F16C kernel (codes recoded and 4-row blocks interleaved at load, bf16 panels from 3 rows) equals the avx2 table kernel bit for bit', async (t) => {
  await fastEqualsTable(t, 'avx2', ['avx2-f16c', 'avx2-table']);
  await fastEqualsTable(t, 'avx2', ['avx2-f16c', 'avx2-table'], 1030);
});

function reorderedOnce(t: ExecutionContext, isa: Isa, kernel: string, layout: string): void {
  const m = native.model;
  const d = desc(4, 'auto', isa);
  const stored = (d.lmHead as NativeFp8Linear).fp8.slice();
  const a = m.modelCreate(d);
  t.is(m.modelStats(a).fp8Kernel, kernel);
  t.is((d.lmHead as NativeFp8Linear & { packed?: string }).packed, layout);
  const before = (d.lmHead as NativeFp8Linear).fp8.slice();
  t.notDeepEqual(before, stored, 'the codes were reordered in place');
  const b = m.modelCreate(d); // same arrays: not reordered again
  t.deepEqual((d.lmHead as NativeFp8Linear).fp8, before);
  m.modelRelease(b);
  t.throws(() => m.modelCreate({ ...d, fp8Kernel: 'table' }), { message: new RegExp(`reordered for the '${layout}' kernel layout`) });
  m.modelRelease(a);
}

testWhen(vbmi, 'CPU lacks avx512bf16 + avx512vbmi: no reordered layout')('FP8 weights are reordered once for the VBMI kernel: a second model reuses them, another layout is refused', (t) => {
  reorderedOnce(t, 'avx512bf16', 'avx512bf16-vbmi', 'chunk64-lane-interleaved');
});

testWhen(avx2, 'CPU lacks avx2: no recoded layout')('FP8 weights are recoded once for the avx2 F16C kernel: a second model reuses them, another layout is refused', (t) => {
  reorderedOnce(t, 'avx2', 'avx2-f16c', 'chunk32-f16c-recoded-rows4');
});

test('FP8 NaN codes are refused at load, naming the tensor, row and column', (t) => {
  const m = native.model;
  const bad = desc(5, 'auto', native.selectedIsa());
  (bad.layerWeights[1]!.down as NativeFp8Linear).fp8[3 * I + 7] = 0xff;
  t.throws(() => m.modelCreate(bad), { message: /layerWeights\[1\]\.down: fp8 holds a NaN code \(0xff\) at row 3, column 7/ });
});
