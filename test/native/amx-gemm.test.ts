// The amx path's bf16 GEMM (native/src/kernels/gemm_amx.h) against the fp64
// reference, and its invariances: a row's bits do not depend on M, on the N
// split, on partial tiles (M, N not multiples of 16, K not of 32), and the 8
// K-segments are summed in order. The amx path's bits differ from avx512bf16's
// (another order of the same products), so nothing here compares the two bitwise.
import test from 'ava';
import { loadNative } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { toBf16Array } from './bf16.js';
import { assertBitwiseEqual } from './helpers.js';
import { gemmReference } from './model-kernels-reference.js';
import { randomFloat32, rng } from './random.js';

const native = loadNative();
const probes = loadProbes();
const hasAmx = native.availableIsas().includes('amx');
const amxTest = hasAmx ? test : test.skip;
const why = hasAmx ? '' : ' (skipped: this CPU or OS has no AMX-BF16)';

function gemm(w: Uint16Array, x: Float32Array, M: number, N: number, K: number, segments: number, n0?: number, n1?: number, out?: Float32Array): Float32Array {
  const o = out ?? new Float32Array(M * N).fill(Number.NaN);
  probes.modelKernel('gemm', 'amx', { bf16: true, w, x, out: o, M, N, K, segments, ...(n0 === undefined ? {} : { n0, n1 }) });
  return o;
}

amxTest(`amx gemm matches the fp64 reference (partial tiles, odd K, 1 or 8 segments)${why}`, (t) => {
  for (const [M, N, K] of [[1, 5, 8], [3, 17, 64], [17, 33, 7], [37, 70, 300], [33, 48, 2048 + 16]] as const) {
    const next = rng(M * 1000 + N * 10 + K);
    const w = toBf16Array(randomFloat32(N * K, next));
    const x = randomFloat32(M * K, next, 2);
    for (const segments of [1, 8]) {
      const got = gemm(w, x, M, N, K, segments);
      const ref = gemmReference(w, x, M, N, K);
      let worst = 0;
      for (let i = 0; i < M * N; i++) worst = Math.max(worst, Math.abs(got[i]! - ref.out[i]!) / (ref.absSum[i]! + 1e-30));
      t.true(worst <= 1e-5, `M=${M} N=${N} K=${K} segments=${segments}: worst error ${worst} of the terms' absolute sum`);
    }
  }
});

amxTest(`amx gemm is bitwise independent of M and of the N split, and sums its 8 K-segments in order${why}`, (t) => {
  const [M, N, K] = [37, 53, 512];
  const next = rng(5);
  const w = toBf16Array(randomFloat32(N * K, next));
  const x = randomFloat32(M * K, next);
  const whole = gemm(w, x, M, N, K, 8);
  for (let m = 0; m < M; m++) assertBitwiseEqual(t, gemm(w, x.subarray(m * K, (m + 1) * K), 1, N, K, 8), whole.subarray(m * N, (m + 1) * N), `row ${m} alone`);
  for (const m0 of [0, 15, 16, 31]) {
    const rows = Math.min(5, M - m0);
    assertBitwiseEqual(t, gemm(w, x.subarray(m0 * K, (m0 + rows) * K), rows, N, K, 8), whole.subarray(m0 * N, (m0 + rows) * N), `rows ${m0}..${m0 + rows - 1} as their own batch`);
  }
  const split = new Float32Array(M * N).fill(Number.NaN);
  for (const [n0, n1] of [[0, 5], [5, 21], [21, 48], [48, 53]]) gemm(w, x, M, N, K, 8, n0, n1, split);
  assertBitwiseEqual(t, split, whole, 'N split into [0,5) [5,21) [21,48) [48,53)');
  const seg = K / 8;
  const parts = Array.from({ length: 8 }, (_, s) => {
    const ws = new Uint16Array(N * seg);
    const xs = new Float32Array(M * seg);
    for (let n = 0; n < N; n++) ws.set(w.subarray(n * K + s * seg, n * K + (s + 1) * seg), n * seg);
    for (let m = 0; m < M; m++) xs.set(x.subarray(m * K + s * seg, m * K + (s + 1) * seg), m * seg);
    return gemm(ws, xs, M, N, seg, 1);
  });
  const summed = new Float32Array(M * N);
  for (let i = 0; i < M * N; i++) {
    let acc = parts[0]![i]!;
    for (let s = 1; s < 8; s++) acc = Math.fround(acc + parts[s]![i]!);
    summed[i] = acc;
  }
  assertBitwiseEqual(t, whole, summed, '8 segments combined in order');
});

test('amx is opt-in: never the automatic choice', (t) => {
  const available = native.availableIsas();
  t.not(available[0], 'amx');
  if (process.env.TROUPE_ISA !== 'amx') t.not(native.selectedIsa(), 'amx');
  t.log(`amx ${hasAmx ? 'available' : 'not available'}; features: amx_tile ${native.cpuFeatures().amx_tile}, amx_bf16 ${native.cpuFeatures().amx_bf16}`);
});
