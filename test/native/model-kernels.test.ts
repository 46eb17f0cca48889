// The forward pass's kernels (native/src/kernels/model_kernels.h) against plain
// references, on every ISA path this CPU has; and the bitwise properties the
// model relies on: results independent of batch size, of how N or the
// attention work is split, of chunking; the 8 K-segments summed in order.
import test from 'ava';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes, type KvLayoutArgs, type TileLse } from '../../native/probes.js';
import { bf16BitsToFp32, fp32ToBf16Bits, toBf16Array } from './bf16.js';
import { assertBitwiseEqual, forEachIsa } from './helpers.js';
import { attentionReference, gemmReference, type AttentionProblem } from './model-kernels-reference.js';
import { randomFloat32, rng } from './random.js';

const native = loadNative();
const probes = loadProbes();
const kernel = (name: string, isa: Isa, args: object) => probes.modelKernel(name, isa, args);

function gemm(isa: Isa, w: Uint16Array | Float32Array, x: Float32Array, M: number, N: number, K: number, segments: number, n0?: number, n1?: number, out?: Float32Array): Float32Array {
  const o = out ?? new Float32Array(M * N).fill(Number.NaN);
  kernel('gemm', isa, { bf16: w instanceof Uint16Array, w, x, out: o, M, N, K, segments, ...(n0 === undefined ? {} : { n0, n1 }) });
  return o;
}

test('gemm (bf16 and fp32 weights, K in 1 or 8 segments) matches the fp64 reference', (t) => {
  forEachIsa(t, (isa) => {
    for (const [M, N, K] of [[1, 5, 8], [3, 17, 64], [7, 9, 192], [5, 33, 2048 + 16]] as const) {
      const next = rng(M * 1000 + N * 10 + K);
      const wf = randomFloat32(N * K, next);
      const x = randomFloat32(M * K, next, 2);
      for (const w of [toBf16Array(wf), wf]) {
        for (const segments of [1, 8]) {
          const got = gemm(isa, w, x, M, N, K, segments);
          const ref = gemmReference(w, x, M, N, K);
          let ok = true;
          for (let i = 0; i < M * N; i++) if (!(Math.abs(got[i]! - ref.out[i]!) <= 1e-5 * ref.absSum[i]! + 1e-30)) ok = false;
          t.true(ok, `${isa} ${w instanceof Uint16Array ? 'bf16' : 'fp32'} M=${M} N=${N} K=${K} segments=${segments}`);
        }
      }
    }
  });
});

test('gemm is bitwise independent of M, of the N split, and sums its 8 K-segments in order', (t) => {
  forEachIsa(t, (isa) => {
    const [M, N, K] = [6, 37, 512];
    const next = rng(5);
    const wf = randomFloat32(N * K, next);
    const x = randomFloat32(M * K, next);
    for (const w of [toBf16Array(wf), wf]) {
      const whole = gemm(isa, w, x, M, N, K, 8);
      for (let m = 0; m < M; m++) assertBitwiseEqual(t, gemm(isa, w, x.subarray(m * K, (m + 1) * K), 1, N, K, 8), whole.subarray(m * N, (m + 1) * N), `${isa} row ${m} alone`);
      const split = new Float32Array(M * N).fill(Number.NaN);
      for (const [n0, n1] of [[0, 5], [5, 21], [21, 37]]) gemm(isa, w, x, M, N, K, 8, n0, n1, split);
      assertBitwiseEqual(t, split, whole, `${isa}: N split into [0,5) [5,21) [21,37)`);
      // segment s covers k in [K*s/8, K*(s+1)/8); the output is ((P0 + P1) + P2) + ... in fp32.
      const seg = K / 8;
      const parts = Array.from({ length: 8 }, (_, s) => {
        const ws = w instanceof Uint16Array ? new Uint16Array(N * seg) : new Float32Array(N * seg);
        const xs = new Float32Array(M * seg);
        for (let n = 0; n < N; n++) ws.set(w.subarray(n * K + s * seg, n * K + (s + 1) * seg), n * seg);
        for (let m = 0; m < M; m++) xs.set(x.subarray(m * K + s * seg, m * K + (s + 1) * seg), m * seg);
        return gemm(isa, ws, xs, M, N, seg, 1);
      });
      const summed = new Float32Array(M * N);
      for (let i = 0; i < M * N; i++) {
        let acc = parts[0]![i]!;
        for (let s = 1; s < 8; s++) acc = Math.fround(acc + parts[s]![i]!);
        summed[i] = acc;
      }
      assertBitwiseEqual(t, whole, summed, `${isa}: 8 segments combined in order`);
    }
  });
});

/** Runs a portable kernel on every ISA and checks all give the same bits (no FMA contraction, explicit lanes). */
function sameOnEveryIsa(t: import('ava').ExecutionContext, name: string, run: (isa: Isa) => Float32Array): Float32Array {
  let first: Float32Array | undefined;
  forEachIsa(t, (isa) => {
    const got = run(isa);
    if (first === undefined) first = got;
    else assertBitwiseEqual(t, got, first, `${name}: ${isa} vs the first ISA`);
  });
  return first!;
}

test('rmsNorm, siluMul, rope and exp match fp64 references and are bitwise the same on every ISA', (t) => {
  const next = rng(9);
  const [rows, H] = [5, 300];
  const x = randomFloat32(rows * H, next, 3);
  const w = randomFloat32(H, next, 2);
  const norm = sameOnEveryIsa(t, 'rmsNorm', (isa) => {
    const out = new Float32Array(rows * H);
    kernel('rmsNorm', isa, { x, weight: w, out, rows, H, eps: 1e-5 });
    return out;
  });
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[r * H + i]! ** 2;
    const inv = 1 / Math.sqrt(ss / H + 1e-5);
    for (let i = 0; i < H; i++) t.true(Math.abs(norm[r * H + i]! - x[r * H + i]! * inv * w[i]!) <= 1e-5 * Math.abs(x[r * H + i]! * inv * w[i]!) + 1e-7);
  }

  const I = 77;
  const gu = randomFloat32(rows * 2 * I, next, 8);
  const act = sameOnEveryIsa(t, 'siluMul', (isa) => {
    const out = new Float32Array(rows * I);
    kernel('siluMul', isa, { gateUp: gu, out, rows, I });
    return out;
  });
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < I; i++) {
      const g = gu[r * 2 * I + i]!, u = gu[r * 2 * I + I + i]!;
      const want = (g / (1 + Math.exp(-g))) * u;
      t.true(Math.abs(act[r * I + i]! - want) <= 1e-6 * Math.abs(want) + 1e-7, `silu ${g} * ${u}`);
    }

  const [heads, D, ld] = [3, 16, 56];
  const q = randomFloat32(rows * ld, next);
  const cosSin = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < D / 2; i++) {
      const a = (r + 1) * 0.3 * (i + 1);
      cosSin[r * D + i] = Math.cos(a);
      cosSin[r * D + D / 2 + i] = Math.sin(a);
    }
  const roped = sameOnEveryIsa(t, 'rope', (isa) => {
    const v = q.slice();
    kernel('rope', isa, { x: v, ld, heads, D, cosSin, rows });
    return v;
  });
  for (let r = 0; r < rows; r++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < D / 2; i++) {
        const c = cosSin[r * D + i]!, s = cosSin[r * D + D / 2 + i]!;
        const x1 = q[r * ld + h * D + i]!, x2 = q[r * ld + h * D + D / 2 + i]!;
        t.true(Math.abs(roped[r * ld + h * D + i]! - (x1 * c - x2 * s)) < 1e-6);
        t.true(Math.abs(roped[r * ld + h * D + D / 2 + i]! - (x2 * c + x1 * s)) < 1e-6);
      }
  t.deepEqual(Array.from(roped.subarray(heads * D, ld)), Array.from(q.subarray(heads * D, ld)), 'columns past the heads untouched');

  const xs = Float32Array.from({ length: 2001 }, (_, i) => -100 + i * 0.1);
  const e = sameOnEveryIsa(t, 'exp', (isa) => {
    const out = new Float32Array(xs.length);
    kernel('exp', isa, { x: xs, out });
    return out;
  });
  let worst = 0;
  xs.forEach((v, i) => {
    if (v < Math.fround(-87.3)) t.is(e[i], 0, `exp(${v}) flushes to 0`);
    else if (v <= 88) worst = Math.max(worst, Math.abs(e[i]! - Math.exp(v)) / Math.exp(v));
  });
  t.true(worst < 4e-7, `exp max relative error ${worst}`);
  t.is(sameOnEveryIsa(t, 'exp(0)', (isa) => {
    const out = new Float32Array(1);
    kernel('exp', isa, { x: new Float32Array(1), out });
    return out;
  })[0], 1);
});

test('tileLse gives the same (max, sum) bits on every ISA: 16 fp64 lanes whatever the vector width', (t) => {
  for (const n of [4096, 1280, 16 * 9 + 7]) {
    const logits = randomFloat32(n, rng(40 + n), 4);
    let first: TileLse | undefined;
    forEachIsa(t, (isa) => {
      const got = kernel('tileLse', isa, { logits: logits.slice() }) as TileLse;
      t.true(got.sum >= 1 && Number.isFinite(got.sum), `${isa} n=${n}: sum ${got.sum}`);
      if (first === undefined) first = got;
      else t.true(Object.is(got.max, first.max) && Object.is(got.sum, first.sum), `${isa} n=${n}: (${got.max}, ${got.sum}) vs (${first.max}, ${first.sum})`);
    });
  }
});

test('maskedTileLse masks exactly the disallowed logits and gives tileLse of the masked tile, bitwise', (t) => {
  const masked = -1e30;
  const random = rng(9);
  // Tiles of 4096 (a vocab tile), 1280 (the last of 128256) and 32 x 40 + 13 (a tail word).
  const cases: Array<{ name: string; n: number; words: (w: number, count: number) => number }> = [
    { name: 'runs of clear and set words, mixed words, a tail', n: 32 * 40 + 13, words: (w, count) => (w < 6 || w === 20 ? 0 : w < 10 ? 0xffffffff : w === count - 1 ? 0b1010110011011 : (random() * 2 ** 32) >>> 0) },
    { name: 'a structural state: two allowed ids', n: 4096, words: (w) => (w === 3 ? 1 << 5 : w === 77 ? 1 << 30 : 0) },
    { name: 'half words clear', n: 1280, words: (w) => (w % 3 === 0 ? 0x0000ffff : w % 3 === 1 ? 0xffff0000 : 0) },
    { name: 'all clear', n: 4096, words: () => 0 },
    { name: 'all clear but a tail', n: 32 * 7 + 20, words: (w, count) => (w === count - 1 ? 0b10000000000000000000 : 0) },
    { name: 'all set', n: 1280, words: () => 0xffffffff },
  ];
  for (const [c, { name, n, words: wordOf }] of cases.entries()) {
    const count = Math.ceil(n / 32);
    const words = Uint32Array.from({ length: count }, (_, w) => wordOf(w, count));
    const logits = randomFloat32(n, rng(10 + c), 5);
    const want = logits.map((v, j) => ((words[j >>> 5]! >>> (j & 31)) & 1 ? v : masked));
    forEachIsa(t, (isa) => {
      const wantLse = kernel('tileLse', isa, { logits: want.slice() }) as TileLse;
      const got = logits.slice();
      const gotLse = kernel('maskedTileLse', isa, { logits: got, words, masked }) as TileLse;
      assertBitwiseEqual(t, got, want, `${isa} ${name}: masked logits`);
      t.true(Object.is(gotLse.max, wantLse.max) && Object.is(gotLse.sum, wantLse.sum),
        `${isa} ${name}: (max, sum) (${gotLse.max}, ${gotLse.sum}) vs tileLse (${wantLse.max}, ${wantLse.sum})`);
    });
  }
});

test('logSumExp over vocab tiles matches fp64', (t) => {
  const logits = randomFloat32(128256, rng(4), 10);
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  let z = 0;
  for (const v of logits) z += Math.exp(v - m);
  forEachIsa(t, (isa) => {
    const got = kernel('logSumExp', isa, { logits }) as number;
    t.true(Math.abs(got - (m + Math.log(z))) < 1e-5, `${isa}: ${got} vs ${m + Math.log(z)}`);
  });
});

test('kvWrite puts K transposed and V row-major in the slot mapping\'s pages, bf16 rounded, skipping slot -1', (t) => {
  const layout: KvLayoutArgs = { numBlocks: 3, blockSize: 4, kvHeads: 2, headDim: 3, bf16: true };
  const pageElems = 2 * layout.kvHeads * layout.headDim * layout.blockSize;
  const ld = 8; // k and v rows: 2 heads x 3
  const k = randomFloat32(3 * ld, rng(1)), v = randomFloat32(3 * ld, rng(2));
  const slots = Int32Array.from([9, -1, 2]); // page 2 offset 1; skipped; page 0 offset 2
  forEachIsa(t, (isa) => {
    const kv = new Uint16Array(layout.numBlocks * pageElems);
    kernel('kvWrite', isa, { k, v, ld, slots, kv, layout });
    let written = 0;
    for (const [r, slot] of [[0, 9], [2, 2]] as const) {
      const page = Math.floor(slot / 4), j = slot % 4;
      for (let g = 0; g < 2; g++)
        for (let d = 0; d < 3; d++) {
          t.is(kv[page * pageElems + g * 3 * 4 + d * 4 + j], fp32ToBf16Bits(k[r * ld + g * 3 + d]!));
          t.is(kv[page * pageElems + (2 + g) * 3 * 4 + j * 3 + d], fp32ToBf16Bits(v[r * ld + g * 3 + d]!));
          written += 2;
        }
    }
    t.is(kv.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0), written, 'nothing else written');
  });
});

/** A random mixed batch: prefill chunks over a cached prefix and one-token decodes, pages shuffled. */
function attentionProblem(seed: number, D: number, numHeads: number, kvHeads: number, blockSize: number): AttentionProblem {
  const next = rng(seed);
  const queryLens = [37, 1, 20, 1, 3];
  const contextLens = [37, 50, 45, 1, 19];
  const pagesPer = contextLens.map((c) => Math.ceil(c / blockSize));
  const numBlocks = pagesPer.reduce((a, b) => a + b, 0) + 2;
  const order = Array.from({ length: numBlocks }, (_, i) => i).sort(() => next() - 0.5);
  let used = 0;
  const blockTables = pagesPer.map((n) => order.slice(used, (used += n)));
  const T = queryLens.reduce((a, b) => a + b, 0);
  return {
    D, numHeads, kvHeads, blockSize, numBlocks, queryLens, contextLens, blockTables,
    q: randomFloat32(T * numHeads * D, next, 2),
    keys: contextLens.map((c) => Array.from({ length: c }, () => randomFloat32(kvHeads * D, next, 2))),
    values: contextLens.map((c) => Array.from({ length: c }, () => randomFloat32(kvHeads * D, next))),
  };
}

function runAttention(isa: Isa, p: AttentionProblem, bf16: boolean, taskRows?: number): Float32Array {
  const layout: KvLayoutArgs = { numBlocks: p.numBlocks, blockSize: p.blockSize, kvHeads: p.kvHeads, headDim: p.D, bf16 };
  const kv = bf16 ? new Uint16Array(p.numBlocks * 2 * p.kvHeads * p.D * p.blockSize) : new Float32Array(p.numBlocks * 2 * p.kvHeads * p.D * p.blockSize);
  // Fill the cache through kvWrite, position by position.
  const ld = p.kvHeads * p.D;
  p.contextLens.forEach((c, s) => {
    const k = new Float32Array(c * ld), v = new Float32Array(c * ld);
    const slots = new Int32Array(c);
    for (let j = 0; j < c; j++) {
      k.set(p.keys[s]![j]!, j * ld);
      v.set(p.values[s]![j]!, j * ld);
      slots[j] = p.blockTables[s]![Math.floor(j / p.blockSize)]! * p.blockSize + (j % p.blockSize);
    }
    kernel('kvWrite', isa, { k, v, ld, slots, kv, layout });
  });
  const maxBlocks = Math.max(...p.blockTables.map((b) => b.length));
  const tables = new Int32Array(p.queryLens.length * maxBlocks);
  p.blockTables.forEach((b, s) => tables.set(b, s * maxBlocks));
  const T = p.queryLens.reduce((a, b) => a + b, 0);
  const out = new Float32Array(T * p.numHeads * p.D).fill(Number.NaN);
  kernel('attention', isa, {
    q: p.q, ldQ: p.numHeads * p.D, out, ldOut: p.numHeads * p.D, kv, layout,
    queryLens: Int32Array.from(p.queryLens), contextLens: Int32Array.from(p.contextLens), blockTables: tables, maxBlocks,
    numHeads: p.numHeads, scale: 1 / Math.sqrt(p.D), ...(taskRows ? { taskRows } : {}),
  });
  return out;
}

// GQA groups of 2 (slots: 2 heads x 8 rows), 3 (15 of 16 slots), 8 (2 rows per tile) and
// 32 (more heads than slots: the group is split); decode slots use the 4- and 8-slot tiles.
for (const [D, blockSize, heads, kvHeads] of [[64, 16, 4, 2], [8, 16, 4, 2], [16, 5, 4, 2], [16, 16, 4, 2], [32, 32, 4, 1], [128, 32, 4, 2], [64, 16, 6, 2], [64, 32, 8, 1], [64, 64, 32, 1]] as const) {
  test(`paged attention (head dim ${D}, block size ${blockSize}, GQA ${heads}:${kvHeads}, mixed prefill + decode) matches fp64; tiling and work split do not change a bit`, (t) => {
    const p = attentionProblem(D * 100 + blockSize + heads, D, heads, kvHeads, blockSize);
    for (const bf16 of [false, true]) {
      const round = bf16 ? (v: number) => bf16BitsToFp32(fp32ToBf16Bits(v)) : (v: number) => v;
      const ref = attentionReference(p, round);
      const results = new Map<Isa, Float32Array>();
      forEachIsa(t, (isa) => {
        const got = runAttention(isa, p, bf16);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - ref[i]!));
        t.true(worst < 2e-5, `${isa} ${bf16 ? 'bf16' : 'fp32'} KV: max error ${worst}`);
        // One query row per task (decode-like tiles: one row of every head of the group) and
        // multi-row tiles give the same bits.
        assertBitwiseEqual(t, runAttention(isa, p, bf16, 1), got, `${isa}: one query per task vs whole sequences`);
        assertBitwiseEqual(t, runAttention(isa, p, bf16, 7), got, `${isa}: 7 queries per task vs whole sequences`);
        results.set(isa, got);
      });
      const first = [...results.values()][0]!;
      for (const [isa, got] of results) assertBitwiseEqual(t, got, first, `${isa} vs the first ISA`);
    }
  });
}
