// Model II's fast paths against their plain counterparts: the vector exp
// against the scalar one lane for lane, SiLU-and-mul on a column range with a
// bf16 output, the bf16 rounding kernel against the reference rounding, GEMM
// row results independent of which register block the batch size selects, and
// sampling from the lm head's tile summaries against sampling from raw rows.
import test from 'ava';
import { packSampling, type SampleRequest, type SamplingParams } from '../../models/sampling.js';
import { loadNative, type Isa } from '../../native/index.js';
import { fp32ToBf16Bits, toBf16Array } from './bf16.js';
import { assertBitwiseEqual, forEachIsa } from './helpers.js';
import { randomFloat32, rng } from './random.js';

const native = loadNative();
const kernel = (name: string, isa: Isa, args: object) => native.model.modelKernel(name, isa, args);

test('exp: vector lanes and scalar tails give the same bits for the same input, on every ISA', (t) => {
  // Every value appears at 16 offsets of a 16 * 17 + 3 array: in every lane of the vector loop and in the tail.
  const values = [-87.3, -87.29, -87.31, -50.5, -1e-30, 0, 1e-30, 0.34657359, -0.34657359, 1, 3.75, 20.1, 88.29, 88.31, -Infinity, Infinity, ...randomFloat32(64, rng(3), 90)];
  forEachIsa(t, (isa) => {
    for (const v of values) {
      const n = 16 * 17 + 3;
      const x = new Float32Array(n).fill(v);
      const out = new Float32Array(n);
      kernel('exp', isa, { x, out });
      const bits = new Uint32Array(out.buffer);
      t.true(bits.every((b) => b === bits[0]), `${isa}: exp(${v}) differs between lanes / tail`);
    }
  });
});

test('siluMul on a column range writes only those columns; its bf16 output is the fp32 output rounded', (t) => {
  const [rows, I] = [3, 70];
  const gu = randomFloat32(rows * 2 * I, rng(11), 6);
  forEachIsa(t, (isa) => {
    const whole = new Float32Array(rows * I);
    kernel('siluMul', isa, { gateUp: gu, out: whole, rows, I });
    const part = new Float32Array(rows * I).fill(Number.NaN);
    const bf = new Uint16Array(rows * I).fill(0xffff);
    kernel('siluMul', isa, { gateUp: gu, out: part, outBf16: bf, rows, I, c0: 5, c1: 58 });
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < I; c++) {
        const inside = c >= 5 && c < 58;
        const i = r * I + c;
        if (inside) {
          t.is(new Uint32Array(Float32Array.of(part[i]!).buffer)[0], new Uint32Array(Float32Array.of(whole[i]!).buffer)[0]);
          t.is(bf[i], fp32ToBf16Bits(whole[i]!));
        } else {
          t.true(Number.isNaN(part[i]!) && bf[i] === 0xffff, `column ${c} untouched`);
        }
      }
  });
});

test('roundBf16 rounds to nearest even like the reference (NaN stays NaN, overflow goes to Inf)', (t) => {
  const x = Float32Array.from([...randomFloat32(1000, rng(5), 1e3), 1.00390625, 1.01171875, -2.5e38, 3.4e38, Number.NaN, Infinity, -0, 1e-40]);
  forEachIsa(t, (isa) => {
    const out = new Uint16Array(x.length);
    kernel('roundBf16', isa, { x, out });
    t.deepEqual(Array.from(out), Array.from(toBf16Array(x)), isa);
  });
});

test('gemm: a row gives the same bits whichever register block its batch size selects (M = 1, 2..64, > 64)', (t) => {
  forEachIsa(t, (isa) => {
    const [N, K] = [41, 520];
    const next = rng(21);
    const wf = randomFloat32(N * K, next);
    const x = randomFloat32(70 * K, next, 2);
    for (const w of [toBf16Array(wf), wf]) {
      for (const segments of [1, 8]) {
        const run = (M: number, from = 0) => {
          const out = new Float32Array(M * N).fill(Number.NaN);
          kernel('gemm', isa, { bf16: w instanceof Uint16Array, w, x: x.subarray(from * K, (from + M) * K), out, M, N, K, segments });
          return out;
        };
        const big = run(70); // the prefill block
        for (const [M, from] of [[1, 0], [1, 69], [9, 3], [64, 6], [2, 68]] as const)
          assertBitwiseEqual(t, run(M, from), big.subarray(from * N, (from + M) * N), `${isa} ${w instanceof Uint16Array ? 'bf16' : 'fp32'} S=${segments}: rows ${from}..${from + M - 1} as M=${M}`);
      }
    }
  });
});

function gaussianRows(R: number, V: number, seed: number, sigma: number): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(R * V);
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next() * 0.999999 + 1e-9)), a = 2 * Math.PI * next();
    out[i] = sigma * r * Math.cos(a);
    if (i + 1 < out.length) out[i + 1] = sigma * r * Math.sin(a);
  }
  return out;
}

test('sampling from the lm head tile summaries picks what sampling from the raw rows picks (greedy, top-k, top-n logprobs)', (t) => {
  const V = 20000, R = 6;
  const logits = gaussianRows(R, V, 7, 3);
  logits[2 * V + 12345] = logits[2 * V + 7] = 40; // a tie across tiles: the lower id wins
  for (const params of [{ temperature: 0 }, { temperature: 0, logprobs: 5 }, { temperature: 0.7, topK: 40, logprobs: 20 }, { temperature: 1.3, topK: 5, topP: 0.8 }, { temperature: 1, topK: 64 }] as SamplingParams[]) {
    const rows: SampleRequest[] = Array.from({ length: R }, (_, i) => ({ params, seed: 100 + i, outputIndex: i }));
    const fused = native.model.sampleLogits(logits, V, packSampling(rows));
    const raw = native.model.sampleLogits(logits, V, packSampling(rows), { summaries: false });
    t.deepEqual(Array.from(fused.tokens), Array.from(raw.tokens), JSON.stringify(params));
    t.deepEqual(Array.from(fused.logprobs), Array.from(raw.logprobs));
    t.deepEqual(Array.from(fused.topIds), Array.from(raw.topIds), 'top-n logprobs: the same ids');
    t.deepEqual(Array.from(fused.topLogprobs), Array.from(raw.topLogprobs));
  }
  t.is(native.model.sampleLogits(logits.subarray(2 * V, 3 * V), V, packSampling([{ params: { temperature: 0 }, seed: 0, outputIndex: 0 }])).tokens[0], 7);
});

test('temperature sampling from tile summaries follows softmax(logits / T) like raw-row sampling (chi-square)', (t) => {
  // 9000 logits: three tiles of 4096 (the last partial); mass spread over all of them.
  const V = 9000;
  const base = gaussianRows(1, V, 3, 0.5);
  const ids = [17, 4100, 8999, 5000, 300];
  for (const [j, id] of ids.entries()) base[id] = 6 - j * 0.4;
  const T = 0.8;
  const w = Array.from(base, (v) => Math.exp(v / T));
  const z = w.reduce((a, b) => a + b, 0);
  const N = 3000;
  const logits = new Float32Array(N * V);
  for (let i = 0; i < N; i++) logits.set(base, i * V);
  for (const summaries of [true, false]) {
    const rows: SampleRequest[] = Array.from({ length: N }, (_, i) => ({ params: { temperature: T }, seed: 9, outputIndex: i }));
    const tokens = native.model.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
    const counts = new Map<number, number>();
    for (const tok of tokens) counts.set(tok, (counts.get(tok) ?? 0) + 1);
    let chi2 = 0, rest = N;
    for (const id of ids) {
      const e = (N * w[id]!) / z, c = counts.get(id) ?? 0;
      chi2 += (c - e) ** 2 / e;
      rest -= c;
    }
    const eRest = N * (1 - ids.reduce((s, id) => s + w[id]! / z, 0));
    chi2 += (rest - eRest) ** 2 / eRest;
    t.true(chi2 < 20.5, `summaries ${summaries}: chi2 ${chi2.toFixed(1)} (5 dof, p=0.001 bound 20.5)`);
  }
});

test('top-p over a long nucleus (thousands of tokens) draws only inside the fp64 nucleus, spread over it', (t) => {
  const V = 60000;
  const logits = gaussianRows(1, V, 5, 2);
  const T = 0.9, topP = 0.7;
  const y = Array.from(logits, (v) => v / T);
  const m = Math.max(...y);
  const order = Array.from(y.keys()).sort((a, b) => y[b]! - y[a]! || a - b);
  const z = y.reduce((s, v) => s + Math.exp(v - m), 0);
  let mass = 0, cut = 0;
  while (mass < topP * z) mass += Math.exp(y[order[cut++]!]! - m);
  t.true(cut > 1000, `the nucleus is long (${cut} tokens): the bracketed path runs`);
  // Tokens within a relative 1e-5 of the cut value may fall either side (fp32 weights): allowed.
  const yCut = y[order[cut - 1]!]!;
  const inside = new Set(order.filter((id) => y[id]! >= yCut - 1e-5 * Math.abs(yCut)));
  const N = 400;
  const rows: SampleRequest[] = Array.from({ length: N }, (_, i) => ({ params: { temperature: T, topP }, seed: 3, outputIndex: i }));
  const big = new Float32Array(N * V);
  for (let i = 0; i < N; i++) big.set(logits, i * V);
  const tokens = Array.from(native.model.sampleLogits(big, V, packSampling(rows)).tokens);
  for (const tok of tokens) t.true(inside.has(tok), `token ${tok} (y ${y[tok]}) outside the nucleus (cut ${yCut})`);
  t.true(new Set(tokens).size > 200, 'draws spread over the nucleus');
});

/** vLLM's penalties on a dense copy (float64 here): bias, repetition over seen tokens, frequency / presence over the output. */
function penalize(row: Float32Array, req: SampleRequest): Float64Array {
  const x = Float64Array.from(row);
  const p = req.params;
  for (const [id, b] of Object.entries(p.logitBias ?? {})) x[Number(id)]! += b;
  const prompt = Array.from(req.promptTokens ?? []), output = Array.from(req.outputTokens ?? []);
  const seen = new Set([...prompt, ...output]);
  const r = p.repetitionPenalty ?? 1;
  if (r !== 1) for (const id of seen) x[id] = x[id]! > 0 ? x[id]! / r : x[id]! * r;
  const counts = new Map<number, number>();
  for (const id of output) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) x[id]! -= (p.frequencyPenalty ?? 0) * c + (p.presencePenalty ?? 0);
  return x;
}

test('penalized sampling from the tile weights (sparse corrections) follows the penalized softmax, like the dense path (chi-square)', (t) => {
  const V = 9000; // three vocab tiles, the last partial
  const top = [17, 4100, 8999, 5000, 300, 6000];
  const spread = gaussianRows(1, V, 11, 0.5);
  for (const [j, id] of top.entries()) spread[id] = 6 - j * 0.3;
  const peaked = Float32Array.from(spread);
  peaked[17] = 14; // holds ~99% of the mass at T 0.8
  const T = 0.8, N = 3000;
  const cases: { name: string; base: Float32Array; extra: Partial<SampleRequest>; params: SamplingParams }[] = [
    { name: 'repetition + presence + frequency', base: spread, params: { temperature: T, repetitionPenalty: 1.6, presencePenalty: 0.4, frequencyPenalty: 0.3 }, extra: { promptTokens: [17, 300, 12, 17], outputTokens: [4100, 4100, 9] } },
    // The top token biased away and another raised above the row's max.
    { name: 'bias moving the max', base: spread, params: { temperature: T, logitBias: { 17: -100, 5000: 1.5 } }, extra: {} },
    // The correction would cancel ~99% of the mass: the dense row decides.
    { name: 'bias removing a dominant token', base: peaked, params: { temperature: T, logitBias: { 17: -100 } }, extra: {} },
  ];
  for (const c of cases) {
    const req: SampleRequest = { params: c.params, seed: 9, outputIndex: 0, ...c.extra };
    const y = Array.from(penalize(c.base, req), (v) => v / T);
    const m = Math.max(...y);
    const w = y.map((v) => Math.exp(v - m));
    const z = w.reduce((a, b) => a + b, 0);
    const logits = new Float32Array(N * V);
    for (let i = 0; i < N; i++) logits.set(c.base, i * V);
    for (const summaries of [true, false]) {
      const rows = Array.from({ length: N }, (_, i) => ({ ...req, outputIndex: i }));
      const tokens = native.model.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
      const counts = new Map<number, number>();
      for (const tok of tokens) counts.set(tok, (counts.get(tok) ?? 0) + 1);
      let chi2 = 0, rest = N;
      for (const id of top) {
        const e = (N * w[id]!) / z, got = counts.get(id) ?? 0;
        if (e < 1e-9) t.is(got, 0, `${c.name}: token ${id} has no mass left`);
        else chi2 += (got - e) ** 2 / e;
        rest -= got;
      }
      const eRest = N * (1 - top.reduce((s, id) => s + w[id]! / z, 0));
      chi2 += (rest - eRest) ** 2 / eRest;
      t.true(chi2 < 22.5, `${c.name}, summaries ${summaries}: chi2 ${chi2.toFixed(1)} (6 dof, p=0.001 bound 22.5)`);
    }
  }
});

test('top-p with penalties draws only inside the penalized nucleus, from the tile weights and from the dense row', (t) => {
  const V = 20000;
  const row = gaussianRows(1, V, 21, 2);
  const T = 0.9, topP = 0.6;
  const promptTokens = Array.from({ length: 300 }, (_, i) => (i * 7919) % V);
  const req: SampleRequest = { params: { temperature: T, topP, repetitionPenalty: 1.3, logitBias: { 5: 12 } }, seed: 4, outputIndex: 0, promptTokens, outputTokens: [11, 11, 12] };
  const y = Array.from(penalize(row, req), (v) => v / T);
  const m = Math.max(...y);
  const order = Array.from(y.keys()).sort((a, b) => y[b]! - y[a]! || a - b);
  const z = y.reduce((s, v) => s + Math.exp(v - m), 0);
  let mass = 0, cut = 0;
  while (mass < topP * z) mass += Math.exp(y[order[cut++]!]! - m);
  const yCut = y[order[cut - 1]!]!;
  const inside = new Set(order.filter((id) => y[id]! >= yCut - 1e-5 * Math.abs(yCut)));
  t.true(cut > 50, `the nucleus holds ${cut} tokens`);
  const N = 300;
  const big = new Float32Array(N * V);
  for (let i = 0; i < N; i++) big.set(row, i * V);
  for (const summaries of [true, false]) {
    const rows = Array.from({ length: N }, (_, i) => ({ ...req, outputIndex: i }));
    const tokens = Array.from(native.model.sampleLogits(big, V, packSampling(rows), { summaries }).tokens);
    for (const tok of tokens) t.true(inside.has(tok), `summaries ${summaries}: token ${tok} (y ${y[tok]}) outside the nucleus (cut ${yCut})`);
    t.true(new Set(tokens).size > 30, `summaries ${summaries}: draws spread over the nucleus`);
    t.true(tokens.includes(5), 'the token the bias raised is drawn');
  }
});

test('min-p (with and without top-p) from the tiles follows the reference distribution over the survivors (chi-square)', (t) => {
  const V = 9000;
  const base = gaussianRows(1, V, 13, 0.5);
  const top = [17, 4100, 8999, 5000, 300, 6000, 7];
  for (const [j, id] of top.entries()) base[id] = 6 - j * 0.25;
  const T = 0.8, N = 3000;
  for (const params of [{ temperature: T, minP: 0.2 }, { temperature: T, minP: 0.05, topP: 0.8 }] as SamplingParams[]) {
    const y = Array.from(base, (v) => v / T);
    const m = Math.max(...y);
    const w = y.map((v) => Math.exp(v - m));
    const order = Array.from(y.keys()).sort((a, b) => y[b]! - y[a]! || a - b);
    let kept = order.filter((id) => w[id]! >= params.minP!);
    if (params.topP !== undefined) {
      const z = kept.reduce((s, id) => s + w[id]!, 0);
      let mass = 0, cut = 0;
      while (mass < params.topP * z) mass += w[kept[cut++]!]!;
      kept = kept.slice(0, cut);
    }
    t.true(kept.length >= 3 && kept.every((id) => top.includes(id)), `survivors ${kept}`);
    const z = kept.reduce((s, id) => s + w[id]!, 0);
    const logits = new Float32Array(N * V);
    for (let i = 0; i < N; i++) logits.set(base, i * V);
    for (const summaries of [true, false]) {
      const rows = Array.from({ length: N }, (_, i) => ({ params, seed: 5, outputIndex: i }));
      const tokens = native.model.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
      const counts = new Map<number, number>();
      for (const tok of tokens) counts.set(tok, (counts.get(tok) ?? 0) + 1);
      t.true([...counts.keys()].every((id) => kept.includes(id)), `summaries ${summaries}: only survivors drawn`);
      const chi2 = kept.reduce((s, id) => s + ((counts.get(id) ?? 0) - (N * w[id]!) / z) ** 2 / ((N * w[id]!) / z), 0);
      t.true(chi2 < 22.5, `${JSON.stringify(params)}, summaries ${summaries}: chi2 ${chi2.toFixed(1)} (<= 6 dof, p=0.001 bound 22.5)`);
    }
  }
});
