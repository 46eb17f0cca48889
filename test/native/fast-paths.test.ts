// Model II's fast paths against their plain counterparts: the vector exp
// against the scalar one lane for lane, SiLU-and-mul on a column range with a
// bf16 output, the bf16 rounding kernel against the reference rounding, GEMM
// row results independent of which register block the batch size selects, and
// sampling from the lm head's tile summaries against sampling from raw rows.
import test from 'ava';
import { packSampling, type SampleRequest, type SamplingParams } from '../../models/sampling.js';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { fp32ToBf16Bits, toBf16Array } from './bf16.js';
import { assertBitwiseEqual, forEachIsa } from './helpers.js';
import { randomFloat32, rng } from './random.js';

const native = loadNative();
const probes = loadProbes();
const kernel = (name: string, isa: Isa, args: object) => probes.modelKernel(name, isa, args);

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

test('gemm: a prompt whose packed activations span several groups gives each row its one-row bits', (t) => {
  // K = 9000: one 4-row block of x packed to fp32 takes ~141 KiB, so the avx2 panels pack
  // 70 rows as three groups of at most 1 MiB (28, 28, 14 rows), each reading every panel.
  forEachIsa(t, (isa) => {
    const [N, K, M] = [7, 9000, 70];
    const next = rng(22);
    const w = toBf16Array(randomFloat32(N * K, next));
    const x = randomFloat32(M * K, next, 2);
    for (const segments of [1, 8]) {
      const run = (m: number, from: number) => {
        const out = new Float32Array(m * N).fill(Number.NaN);
        kernel('gemm', isa, { bf16: true, w, x: x.subarray(from * K, (from + m) * K), out, M: m, N, K, segments });
        return out;
      };
      const all = run(M, 0);
      for (const from of [0, 27, 28, 55, 56, 69])
        assertBitwiseEqual(t, run(1, from), all.subarray(from * N, (from + 1) * N), `${isa} S=${segments}: row ${from} of ${M}`);
    }
  });
});

test('gemm over x packed whole (as a model linear packs it): every row its one-row bits, across several groups', (t) => {
  // 70 rows of K = 9000 and 300 rows of K = 2048: three 1 MiB groups of 4-row blocks each on
  // the avx2 panels; the paths that read x packed (avx2, amx) must take that route.
  forEachIsa(t, (isa) => {
    for (const [N, K, M] of [[7, 9000, 70], [50, 2048, 300]] as const) {
      const next = rng(23 + K);
      const w = toBf16Array(randomFloat32(N * K, next));
      const x = randomFloat32(M * K, next, 2);
      for (const segments of [1, 8]) {
        const run = (m: number, from: number, packedX: boolean) => {
          const out = new Float32Array(m * N).fill(Number.NaN);
          const packed = kernel('gemm', isa, { bf16: true, w, x: x.subarray(from * K, (from + m) * K), out, M: m, N, K, segments, packedX });
          return { out, packed };
        };
        const all = run(M, 0, true);
        t.is(all.packed, isa === 'avx2' || isa === 'amx', `${isa}: x packed whole`);
        assertBitwiseEqual(t, all.out, run(M, 0, false).out, `${isa} N=${N} K=${K} S=${segments}: packed whole vs packed per call`);
        for (const from of [0, 27, 28, 55, 69, M - 1])
          assertBitwiseEqual(t, run(1, from, false).out, all.out.subarray(from * N, (from + 1) * N), `${isa} K=${K} S=${segments}: row ${from} of ${M}`);
      }
    }
  });
});

test('sampling scans: scanGreater, scanGreaterPairs and filterGreater (also in place) keep what y > t keeps, in order, on every ISA', (t) => {
  const next = rng(31);
  for (const n of [0, 5, 16, 47, 300, 4096]) {
    const x = randomFloat32(n, next, 3);
    if (n > 20) [x[3], x[17], x[18]] = [Number.NaN, 1.5, 1.5]; // NaN never kept; ties at t not kept
    const [s, thr] = [1.25, 1.875];
    const want = Array.from(x.keys()).filter((i) => Math.fround(x[i]! * s) > thr);
    forEachIsa(t, (isa) => {
      const all = new Int32Array(n + 16);
      const c = kernel('scanGreater', isa, { x, s, t: thr, out: all }) as number;
      t.deepEqual(Array.from(all.subarray(0, c)), want, `${isa} n=${n}: scanGreater`);
      if (want.length > 3) {
        const few = new Int32Array(3); // the cap: the first three
        t.is(kernel('scanGreater', isa, { x, s, t: thr, out: few }), 3);
        t.deepEqual(Array.from(few), want.slice(0, 3), `${isa} n=${n}: capped`);
        const fromMid = want.filter((i) => i >= 7);
        const mid = new Int32Array(n + 16);
        const cm = kernel('scanGreater', isa, { x, s, t: thr, out: mid, from: 7 }) as number;
        t.deepEqual(Array.from(mid.subarray(0, cm)), fromMid, `${isa} n=${n}: from an unaligned start`);
      }
      const ids = new Int32Array(n + 16), ys = new Float32Array(n + 16);
      const cp = kernel('scanGreaterPairs', isa, { x, s, t: thr, base: 4096, outIds: ids, outY: ys }) as number;
      t.deepEqual(Array.from(ids.subarray(0, cp)), want.map((i) => i + 4096), `${isa} n=${n}: scanGreaterPairs ids`);
      t.deepEqual(Array.from(ys.subarray(0, cp)), want.map((i) => Math.fround(x[i]! * s)), `${isa} n=${n}: scanGreaterPairs y`);
      const y = Float32Array.from(x, (v) => Math.fround(v * s));
      const srcIds = Int32Array.from(x.keys(), (i) => 3 * i + 1);
      const fi = new Int32Array(n + 16), fy = new Float32Array(n + 16);
      const cf = kernel('filterGreater', isa, { ids: srcIds, y, t: thr, outIds: fi, outY: fy }) as number;
      t.deepEqual(Array.from(fi.subarray(0, cf)), want.map((i) => 3 * i + 1), `${isa} n=${n}: filterGreater ids`);
      t.deepEqual(Array.from(fy.subarray(0, cf)), want.map((i) => y[i]!), `${isa} n=${n}: filterGreater y`);
      const inIds = new Int32Array(n + 16), inY = new Float32Array(n + 16); // in place: the outputs over the inputs
      inIds.set(srcIds);
      inY.set(y);
      const ci = kernel('filterGreater', isa, { ids: inIds.subarray(0, n), y: inY.subarray(0, n), t: thr, outIds: inIds, outY: inY }) as number;
      t.deepEqual(Array.from(inIds.subarray(0, ci)), want.map((i) => 3 * i + 1), `${isa} n=${n}: filterGreater in place, ids`);
      t.deepEqual(Array.from(inY.subarray(0, ci)), want.map((i) => y[i]!), `${isa} n=${n}: filterGreater in place, y`);
    });
  }
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

test('sampling from the lm head tile summaries picks what sampling from the raw rows picks (greedy, top-k, top-n logprobs, top-p)', (t) => {
  const V = 20000, R = 6;
  const logits = gaussianRows(R, V, 7, 3);
  logits[2 * V + 12345] = logits[2 * V + 7] = 40; // a tie across tiles: the lower id wins
  const promptTokens = Array.from({ length: 200 }, (_, i) => (i * 7919) % V);
  const cases: { params: SamplingParams; extra?: Partial<SampleRequest>; records?: boolean }[] = [
    { params: { temperature: 0 } },
    { params: { temperature: 0, logprobs: 5 } },
    { params: { temperature: 0.7, topK: 40, logprobs: 20 } },
    { params: { temperature: 1.3, topK: 5, topP: 0.8 } },
    { params: { temperature: 1, topK: 64 } },
    // Top-p alone: the nucleus from the lm head's records (hundreds of tokens at T 0.8).
    { params: { temperature: 0.8, topP: 0.9 }, records: true },
    { params: { temperature: 1, topP: 0.5, logprobs: 3 }, records: true },
    { params: { temperature: 0.8, topP: 0.9, repetitionPenalty: 1.3, logitBias: { 5: 9, 19999: -4 } }, extra: { promptTokens, outputTokens: [11, 11, 12] }, records: true },
  ];
  for (const { params, extra, records } of cases) {
    const rows: SampleRequest[] = Array.from({ length: R }, (_, i) => ({ params, seed: 100 + i, outputIndex: i, ...extra }));
    const fused = probes.sampleLogits(logits, V, packSampling(rows));
    const raw = probes.sampleLogits(logits, V, packSampling(rows), { summaries: false });
    t.deepEqual(Array.from(fused.tokens), Array.from(raw.tokens), JSON.stringify(params));
    t.deepEqual(Array.from(fused.logprobs), Array.from(raw.logprobs));
    t.deepEqual(Array.from(fused.topIds), Array.from(raw.topIds), 'top-n logprobs: the same ids');
    t.deepEqual(Array.from(fused.topLogprobs), Array.from(raw.topLogprobs));
    t.is(fused.nucleusFromRecords, records ? R : 0, `${JSON.stringify(params)}: rows drawn from the top-p records`);
    t.is(raw.nucleusFromRecords, 0);
  }
  t.is(probes.sampleLogits(logits.subarray(2 * V, 3 * V), V, packSampling([{ params: { temperature: 0 }, seed: 0, outputIndex: 0 }])).tokens[0], 7);
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
    const tokens = probes.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
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

/**
 * The fp64 top-p nucleus of scaled logits y: its length, the y of its last token, and the tokens inside it
 * (those within a relative 1e-5 of that y may fall either side with fp32 weights: counted inside).
 */
function fp64Nucleus(y: ArrayLike<number>, topP: number): { cut: number; yCut: number; inside: Set<number> } {
  const ys = Array.from(y);
  const m = Math.max(...ys);
  const order = Array.from(ys.keys()).sort((a, b) => ys[b]! - ys[a]! || a - b);
  const z = ys.reduce((s, v) => s + Math.exp(v - m), 0);
  let mass = 0, cut = 0;
  while (mass < topP * z) mass += Math.exp(ys[order[cut++]!]! - m);
  const yCut = ys[order[cut - 1]!]!;
  return { cut, yCut, inside: new Set(order.filter((id) => ys[id]! >= yCut - 1e-5 * Math.abs(yCut))) };
}

for (const c of [
  // A nucleus of ~17K tokens reaches below the floors of tiles that hold more than 256 tokens within
  // 10 nats of the max: the row is scanned.
  { sigma: 2, T: 0.9, topP: 0.95, minCut: 1000, minDistinct: 200, records: false },
  // ~3K tokens within 10 nats: the nucleus (~400) from the records, through the histogram cut.
  { sigma: 3, T: 0.8, topP: 0.9, minCut: 300, minDistinct: 100, records: true },
])
test(`top-p over a long nucleus draws only inside the fp64 nucleus, spread over it (${c.records ? 'from the lm head records' : 'scanning the row'})`, (t) => {
  const V = 60000;
  const logits = gaussianRows(1, V, 5, c.sigma);
  const { T, topP } = c;
  const y = Array.from(logits, (v) => v / T);
  const { cut, yCut, inside } = fp64Nucleus(y, topP);
  t.true(cut > c.minCut, `the nucleus is long (${cut} tokens)`);
  const N = 400;
  const rows: SampleRequest[] = Array.from({ length: N }, (_, i) => ({ params: { temperature: T, topP }, seed: 3, outputIndex: i }));
  const big = new Float32Array(N * V);
  for (let i = 0; i < N; i++) big.set(logits, i * V);
  const out = probes.sampleLogits(big, V, packSampling(rows));
  t.is(out.nucleusFromRecords, c.records ? N : 0, 'rows drawn from the records');
  const tokens = Array.from(out.tokens);
  for (const tok of tokens) t.true(inside.has(tok), `token ${tok} (y ${y[tok]}) outside the nucleus (cut ${yCut})`);
  t.true(new Set(tokens).size > c.minDistinct, `draws spread over the nucleus (${new Set(tokens).size} distinct)`);
  // The same draws as sampling from the raw row (a scan of it).
  t.deepEqual(tokens, Array.from(probes.sampleLogits(big, V, packSampling(rows), { summaries: false }).tokens));
});

test('top-p scans the row when the records do not hold the nucleus, and draws what the raw row gives', (t) => {
  const V = 20000, N = 200;
  // One token holds ~93% of the mass at T 1; the 0.97 nucleus reaches ~12 nats below it, past the records.
  const peaked = gaussianRows(1, V, 8, 1);
  peaked[123] = 13;
  // Every token within 10 nats of the max: each tile records its best 256, and the nucleus reaches below them.
  const flat = gaussianRows(1, V, 9, 0.5);
  for (const [name, row, topP] of [['past the span', peaked, 0.97], ['flat', flat, 0.9]] as const) {
    const big = new Float32Array(N * V);
    for (let i = 0; i < N; i++) big.set(row, i * V);
    const rows: SampleRequest[] = Array.from({ length: N }, (_, i) => ({ params: { temperature: 1, topP }, seed: 6, outputIndex: i }));
    const fused = probes.sampleLogits(big, V, packSampling(rows));
    t.is(fused.nucleusFromRecords, 0, `${name}: no row from the records`);
    const tokens = Array.from(fused.tokens);
    t.deepEqual(tokens, Array.from(probes.sampleLogits(big, V, packSampling(rows), { summaries: false }).tokens), name);
    const { inside } = fp64Nucleus(row, topP);
    t.true(tokens.every((tok) => inside.has(tok)), `${name}: only nucleus tokens`);
    t.true(new Set(tokens).size > 5, `${name}: draws spread over the nucleus (${new Set(tokens).size} distinct)`);
  }
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
      const tokens = probes.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
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
  const { cut, yCut, inside } = fp64Nucleus(y, topP);
  t.true(cut > 50, `the nucleus holds ${cut} tokens`);
  const N = 300;
  const big = new Float32Array(N * V);
  for (let i = 0; i < N; i++) big.set(row, i * V);
  for (const summaries of [true, false]) {
    const rows = Array.from({ length: N }, (_, i) => ({ ...req, outputIndex: i }));
    const tokens = Array.from(probes.sampleLogits(big, V, packSampling(rows), { summaries }).tokens);
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
      const tokens = probes.sampleLogits(logits, V, packSampling(rows), { summaries }).tokens;
      const counts = new Map<number, number>();
      for (const tok of tokens) counts.set(tok, (counts.get(tok) ?? 0) + 1);
      t.true([...counts.keys()].every((id) => kept.includes(id)), `summaries ${summaries}: only survivors drawn`);
      const chi2 = kept.reduce((s, id) => s + ((counts.get(id) ?? 0) - (N * w[id]!) / z) ** 2 / ((N * w[id]!) / z), 0);
      t.true(chi2 < 22.5, `${JSON.stringify(params)}, summaries ${summaries}: chi2 ${chi2.toFixed(1)} (<= 6 dof, p=0.001 bound 22.5)`);
    }
  }
});
