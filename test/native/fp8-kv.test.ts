// The FP8 KV cache kernels: kvWrite stores e4m3 / e5m2 codes of value / scale
// (the JS encoders' codes, in the page layout of kv_layout.h), and paged
// attention over the codes equals, bit for bit, attention over an fp32 cache
// holding the decoded values (scale 1), on the vector path (head dim 64) and
// the scalar one (head dim 8), on every ISA; with scales, within fp32 rounding.
import test from 'ava';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes, type KvLayoutArgs } from '../../native/probes.js';
import { E4M3_VALUES, E5M2_VALUES, encodeE4M3, encodeE5M2 } from '../../models/quantization/fp8.js';
import { assertBitwiseEqual, forEachIsa } from './helpers.js';
import { randomFloat32, rng } from './random.js';

const kernel = loadProbes().modelKernel;

interface Problem {
  D: number;
  heads: number;
  kvHeads: number;
  bs: number;
  numBlocks: number;
  queryLens: number[];
  contextLens: number[];
  tables: number[][];
  q: Float32Array;
  k: Float32Array[]; // per sequence [context, kvHeads * D]
  v: Float32Array[];
}

function problem(seed: number, D: number, bs: number): Problem {
  const next = rng(seed);
  const queryLens = [20, 1, 1], contextLens = [20, 40, 7];
  const pages = contextLens.map((c) => Math.ceil(c / bs));
  const numBlocks = pages.reduce((a, b) => a + b, 0);
  let used = 0;
  const tables = pages.map((n) => Array.from({ length: n }, () => used++).reverse());
  const heads = 4, kvHeads = 2;
  const vals = (n: number) => randomFloat32(n, next, 3).map((x) => (next() < 0.05 ? x * 1e-3 : x)); // some subnormal codes
  return {
    D, heads, kvHeads, bs, numBlocks, queryLens, contextLens, tables,
    q: randomFloat32(queryLens.reduce((a, b) => a + b, 0) * heads * D, next, 1),
    k: contextLens.map((c) => vals(c * kvHeads * D)),
    v: contextLens.map((c) => vals(c * kvHeads * D)),
  };
}

function fill(isa: Isa, p: Problem, layout: KvLayoutArgs, kv: Uint8Array | Float32Array, map: (x: number, which: 'k' | 'v') => number): void {
  const ld = p.kvHeads * p.D;
  p.contextLens.forEach((c, s) => {
    const slots = Int32Array.from({ length: c }, (_, j) => p.tables[s]![Math.floor(j / p.bs)]! * p.bs + (j % p.bs));
    kernel('kvWrite', isa, { k: p.k[s]!.map((x) => map(x, 'k')), v: p.v[s]!.map((x) => map(x, 'v')), ld, slots, kv, layout });
  });
}

function attend(isa: Isa, p: Problem, layout: KvLayoutArgs, kv: Uint8Array | Float32Array): Float32Array {
  const maxBlocks = Math.max(...p.tables.map((t) => t.length));
  const blockTables = new Int32Array(p.tables.length * maxBlocks);
  p.tables.forEach((t, s) => blockTables.set(t, s * maxBlocks));
  const out = new Float32Array(p.q.length).fill(Number.NaN);
  kernel('attention', isa, {
    q: p.q, ldQ: p.heads * p.D, out, ldOut: p.heads * p.D, kv, layout, queryLens: Int32Array.from(p.queryLens),
    contextLens: Int32Array.from(p.contextLens), blockTables, maxBlocks, numHeads: p.heads, scale: 1 / Math.sqrt(p.D),
  });
  return out;
}

const FORMATS = [
  { fp8: 'e4m3' as const, values: E4M3_VALUES, encode: encodeE4M3 },
  { fp8: 'e5m2' as const, values: E5M2_VALUES, encode: encodeE5M2 },
];

for (const [D, bs] of [[64, 16], [8, 5]] as const) {
  test(`FP8 KV cache (head dim ${D}, block ${bs}): codes as the JS encoders; attention over codes = attention over their decoded values, bitwise`, (t) => {
    forEachIsa(t, (isa) => {
      for (const f of FORMATS) {
        for (const [ks, vs] of [[1, 1], [0.5, 2]] as const) {
          const p = problem(D * 10 + bs, D, bs);
          const base = { numBlocks: p.numBlocks, blockSize: bs, kvHeads: p.kvHeads, headDim: D };
          const fp8Layout: KvLayoutArgs = { ...base, bf16: false, fp8: f.fp8, kScale: ks, vScale: vs };
          const f32Layout: KvLayoutArgs = { ...base, bf16: false };
          const elems = p.numBlocks * 2 * p.kvHeads * D * bs;
          const codes = new Uint8Array(elems);
          fill(isa, p, fp8Layout, codes, (x) => x);
          // The same slots holding the decoded codes (unscaled): element i of the two caches agree.
          const decoded = new Float32Array(elems);
          fill(isa, p, f32Layout, decoded, (x, which) => f.values[f.encode(Math.fround(x / (which === 'k' ? ks : vs)))]!);
          const mismatch = decoded.findIndex((x, i) => f.values[codes[i]!] !== x);
          t.is(mismatch, -1, `${isa} ${f.fp8} scales ${ks}/${vs}: code ${codes[mismatch]} at ${mismatch} decodes to ${f.values[codes[mismatch]!]}, want ${decoded[mismatch]}`);
          const got = attend(isa, p, fp8Layout, codes);
          if (ks === 1 && vs === 1) {
            assertBitwiseEqual(t, got, attend(isa, p, f32Layout, decoded), `${isa} ${f.fp8} attention`);
          } else {
            // Scaled: the kernel folds k_scale into the score scale and multiplies the output by v_scale.
            const scaled = new Float32Array(elems);
            fill(isa, p, f32Layout, scaled, (x, which) => {
              const s = which === 'k' ? ks : vs;
              return f.values[f.encode(Math.fround(x / s))]! * s;
            });
            const want = attend(isa, p, f32Layout, scaled);
            const worst = got.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i]!) / (Math.abs(want[i]!) + 1e-3)), 0);
            t.true(worst < 1e-5, `${isa} ${f.fp8} scaled: worst relative error ${worst}`);
          }
        }
      }
    });
  });
}
