// Sampling kernels (native/src/sampling/sampling.h) through sampleLogits: greedy,
// temperature, top-k / top-p / min-p, penalties, logit bias, counter-based
// random numbers, top-n logprobs; checked against plain references.
import test from 'ava';
import { loadNative } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { logitBiasList, MAX_LOGIT_BIAS_ENTRIES, packSampling, validateSamplingParams, type SampleRequest, type SamplingParams } from '../../models/sampling.js';
import { randomTokens } from './helpers.js';

const native = loadProbes();

function logitsRow(V: number, seed: number, scale = 3): Float32Array {
  const ids = randomTokens(V, 1 << 20, seed);
  return Float32Array.from(ids, (x) => ((x / (1 << 20)) * 2 - 1) * scale);
}

function sample(logits: Float32Array, rows: SampleRequest[]) {
  return native.sampleLogits(logits, logits.length / rows.length, packSampling(rows));
}

function one(logits: Float32Array, params: SamplingParams, seed = 1, outputIndex = 0, extra: Partial<SampleRequest> = {}): number {
  return sample(logits, [{ params, seed, outputIndex, ...extra }]).tokens[0]!;
}

/** Reference softmax in float64. */
function softmax(logits: ArrayLike<number>, temperature = 1): number[] {
  const x = Array.from(logits, (v) => v / temperature);
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

test('greedy picks the argmax (lowest id on ties); logprob and top-n are the raw log-softmax', (t) => {
  const V = 1000;
  const logits = logitsRow(V, 1);
  logits[17] = 9;
  logits[400] = 9; // tie: 17 wins
  const r = sample(logits, [{ params: { temperature: 0, logprobs: 4 }, seed: 0, outputIndex: 0 }]);
  t.is(r.tokens[0], 17);
  const p = softmax(logits);
  const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]! || a - b);
  t.deepEqual(Array.from(r.topIds), order.slice(0, 4));
  for (let k = 0; k < 4; k++) t.true(Math.abs(r.topLogprobs[k]! - Math.log(p[order[k]!]!)) < 1e-5);
  t.true(Math.abs(r.logprobs[0]! - Math.log(p[17]!)) < 1e-5);
});

test('samples are a pure function of (seed, output index): recompute reproduces them', (t) => {
  const logits = logitsRow(5000, 2, 1);
  const params = { temperature: 1.3 };
  const first = Array.from({ length: 20 }, (_, i) => one(logits, params, 77, i));
  const again = Array.from({ length: 20 }, (_, i) => one(logits, params, 77, i));
  t.deepEqual(again, first);
  t.true(new Set(first).size > 10, 'different output indices draw different numbers');
  t.notDeepEqual(Array.from({ length: 20 }, (_, i) => one(logits, params, 78, i)), first);
  t.is(native.counterUniform(77, 3), native.counterUniform(77, 3));
  t.not(native.counterUniform(77, 3), native.counterUniform(77, 4));
});

test('temperature sampling follows softmax(logits / T) (chi-square over 4000 draws)', (t) => {
  const V = 8;
  const logits = Float32Array.from([1, 0.5, 0, -0.5, 2, -1, 0.2, 1.5]);
  for (const T of [0.7, 1, 2]) {
    const p = softmax(logits, T);
    const counts = new Array<number>(V).fill(0);
    const N = 4000;
    const rows: SampleRequest[] = Array.from({ length: N }, (_, i) => ({ params: { temperature: T }, seed: 1234, outputIndex: i }));
    const big = new Float32Array(N * V);
    for (let i = 0; i < N; i++) big.set(logits, i * V);
    for (const tok of sample(big, rows).tokens) counts[tok]!++;
    const chi2 = counts.reduce((s, c, i) => s + (c - N * p[i]!) ** 2 / (N * p[i]!), 0);
    t.true(chi2 < 24.3, `T=${T}: chi2 ${chi2.toFixed(1)} (7 dof, p=0.001 bound 24.3)`);
  }
});

test('top-k, top-p and min-p keep exactly the reference candidate sets', (t) => {
  const V = 3000;
  const logits = logitsRow(V, 3);
  const p = softmax(logits);
  const order = Array.from(p.keys()).sort((a, b) => p[b]! - p[a]! || a - b);
  const draws = (params: SamplingParams) => new Set(Array.from({ length: 400 }, (_, i) => one(logits, params, 5, i)));
  // top-k
  for (const tok of draws({ topK: 5 })) t.true(order.slice(0, 5).includes(tok));
  t.is(draws({ topK: 5 }).size, 5);
  // top-p: the shortest prefix of the sorted distribution with mass >= 0.3
  let mass = 0, cut = 0;
  while (mass < 0.3) mass += p[order[cut++]!]!;
  const nucleus = new Set(order.slice(0, cut));
  for (const tok of draws({ topP: 0.3 })) t.true(nucleus.has(tok), `top-p drew ${tok} outside the ${cut}-token nucleus`);
  t.true(draws({ topP: 0.3 }).size > 1);
  // min-p
  const pmax = p[order[0]!]!;
  const kept = new Set(order.filter((id) => p[id]! >= 0.5 * pmax));
  for (const tok of draws({ minP: 0.5 })) t.true(kept.has(tok));
  // top-p over a flat distribution needs more than the first partial selection (64)
  const flat = new Float32Array(V).fill(0);
  for (const tok of draws({ topP: 0.5 })) t.true(tok >= 0 && tok < V);
  t.true(new Set(Array.from({ length: 300 }, (_, i) => one(flat, { topP: 0.5 }, 1, i))).size > 100);
});

test('penalties and logit bias change the distribution as vLLM defines them', (t) => {
  const logits = Float32Array.from([5, 4.9, 1, 0]);
  t.is(one(logits, { temperature: 0 }), 0);
  // repetition: token 0 seen in the prompt: 5 / 2 = 2.5 < 4.9
  t.is(one(logits, { temperature: 0, repetitionPenalty: 2 }, 1, 0, { promptTokens: [0] }), 1);
  // frequency: 5 - 0.2 * 3 = 4.4 < 4.9 (output tokens only)
  t.is(one(logits, { temperature: 0, frequencyPenalty: 0.2 }, 1, 0, { outputTokens: [0, 0, 0] }), 1);
  t.is(one(logits, { temperature: 0, frequencyPenalty: 0.2 }, 1, 0, { promptTokens: [0, 0, 0] }), 0);
  // presence: 5 - 0.05 = 4.95 > 4.9 stays, - 0.2 = 4.8 < 4.9 flips
  t.is(one(logits, { temperature: 0, presencePenalty: 0.05 }, 1, 0, { outputTokens: [0] }), 0);
  t.is(one(logits, { temperature: 0, presencePenalty: 0.2 }, 1, 0, { outputTokens: [0] }), 1);
  // logit bias
  t.is(one(logits, { temperature: 0, logitBias: { 3: 10 } }), 3);
  for (let i = 0; i < 50; i++) t.is(one(logits, { temperature: 1, logitBias: { 2: 100 } }, 9, i), 2);
  // negative logits under repetition penalty are multiplied
  const neg = Float32Array.from([-1, -1.5]);
  t.is(one(neg, { temperature: 0, repetitionPenalty: 2 }, 1, 0, { promptTokens: [0] }), 1);
});

test('rows of one call are independent: each row samples as it would alone', (t) => {
  const V = 700;
  const rows: SampleRequest[] = [
    { params: { temperature: 0.9, topK: 20 }, seed: 1, outputIndex: 3 },
    { params: { temperature: 0 }, seed: 2, outputIndex: 0 },
    { params: { temperature: 1.1, topP: 0.8, minP: 0.01, logprobs: 2 }, seed: 3, outputIndex: 9 },
  ];
  const logits = new Float32Array(rows.length * V);
  rows.forEach((_, i) => logits.set(logitsRow(V, 10 + i), i * V));
  const together = sample(logits, rows);
  rows.forEach((row, i) => {
    const alone = sample(logits.slice(i * V, (i + 1) * V), [row]);
    t.is(together.tokens[i], alone.tokens[0]);
    t.is(together.logprobs[i], alone.logprobs[0]);
  });
  t.deepEqual(Array.from(together.topIds.subarray(0, 2)), [-1, -1], 'rows without logprobs leave their slots empty');
});

test('invalid sampling params are refused naming the field', (t) => {
  const bad: [SamplingParams, RegExp][] = [
    [{ temperature: -1 }, /temperature must be a number >= 0/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topK: 1.5 }, /topK must be/],
    [{ minP: 2 }, /minP must be in \[0, 1\]/],
    [{ presencePenalty: 3 }, /presencePenalty must be in \[-2, 2\]/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty must be a number > 0/],
    [{ logprobs: 21 }, /logprobs must be an integer in \[0, 20\]/],
    [{ seed: -1 }, /seed must be a non-negative safe integer/],
    [{ logitBias: { 999999: 1 } }, /logitBias key must be a token id/],
    [{ logitBias: Object.fromEntries(Array.from({ length: MAX_LOGIT_BIAS_ENTRIES + 1 }, (_, i) => [i, 1])) }, /logitBias must be at most 300 entries/],
  ];
  for (const [p, re] of bad) t.throws(() => validateSamplingParams(p, 128256), { instanceOf: RangeError, message: re });
  t.notThrows(() => validateSamplingParams({ temperature: 0.7, topK: -1, topP: 0.9, minP: 0.1, logprobs: 20, seed: 3, logitBias: { 5: -100 } }, 128256));
});

test('a logit bias becomes a sparse list once; packing it gives the same arrays as packing the record', (t) => {
  const bias = { 40: -3, 7: 2.5, 1000: 100 };
  const list = logitBiasList(bias)!;
  t.deepEqual(list, { ids: [7, 40, 1000], values: [2.5, -3, 100] });
  t.is(logitBiasList({}), null);
  t.is(logitBiasList(undefined), null);
  const rows = (withList: boolean): SampleRequest[] => [
    { params: { temperature: 0 }, seed: 1, outputIndex: 0 },
    withList ? { params: { temperature: 0 }, logitBias: list, seed: 2, outputIndex: 0 } : { params: { temperature: 0, logitBias: bias }, seed: 2, outputIndex: 0 },
    { params: { temperature: 0 }, logitBias: { ids: [3], values: [-1] }, seed: 3, outputIndex: 0 },
  ];
  const fromList = packSampling(rows(true));
  const fromRecord = packSampling(rows(false));
  t.deepEqual([...fromList.biasIds], [7, 40, 1000, 3]);
  t.deepEqual([...fromList.biasValues], [2.5, -3, 100, -1]);
  t.deepEqual([...fromList.biasOffsets], [0, 0, 3, 4]);
  t.deepEqual(fromList, fromRecord);
  const logits = new Float32Array(3 * 2000);
  t.deepEqual([...native.sampleLogits(logits, 2000, fromList).tokens], [0, 1000, 0]);
});
