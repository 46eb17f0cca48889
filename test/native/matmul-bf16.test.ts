// the probes addon's matmulBf16 vs the fp64 reference, per ISA; batch invariance; bad arguments.
import test from 'ava';
import { loadNative, type Isa } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import { bf16BitsToFp32, fp32ToBf16Bits, toBf16Array } from './bf16.js';
import { assertBitwiseEqual, forEachIsa, testWhen } from './helpers.js';
import { randomFloat32, rng } from './random.js';
import { matmulBf16Reference } from './reference.js';

const native = loadNative();
const probes = loadProbes();

/** Random bf16 weights [N, K] and fp32 activations [M, K]. */
function problem(seed: number, M: number, N: number, K: number): { w: Uint16Array; x: Float32Array } {
  const next = rng(seed);
  return { w: toBf16Array(randomFloat32(N * K, next)), x: randomFloat32(M * K, next, 2) };
}

function run(isa: Isa, w: Uint16Array, x: Float32Array, M: number, N: number, K: number): Float32Array {
  const out = new Float32Array(M * N).fill(Number.NaN); // every element must be written
  probes.matmulBf16(w, x, out, M, N, K, isa);
  return out;
}

// K around every vector width (8, 16, 32 bf16) and a long odd one; N and M not
// multiples of the register blocking (4 and 1/2/4).
const SHAPES: [M: number, N: number, K: number][] = [
  [1, 1, 1], [1, 3, 7], [2, 5, 8], [3, 9, 15], [5, 4, 16], [4, 7, 17], [1, 17, 31], [6, 6, 32],
  [7, 5, 33], [2, 3, 63], [3, 11, 64], [8, 9, 100], [5, 13, 2048 + 5], [1, 6, 4096],
];

test('matmulBf16 matches the fp64 reference on every ISA the CPU has', (t) => {
  forEachIsa(t, (isa) => {
    SHAPES.forEach(([M, N, K], i) => {
      const { w, x } = problem(1000 + i, M, N, K);
      const got = run(isa, w, x, M, N, K);
      const ref = matmulBf16Reference(w, x, M, N, K);
      let worst = 0;
      for (let j = 0; j < M * N; j++) {
        const err = Math.abs(got[j]! - ref.out[j]!);
        const tol = 1e-5 * ref.absSum[j]! + 1e-30;
        if (!(err <= tol)) {
          t.fail(`${isa} M=${M} N=${N} K=${K} [${Math.floor(j / N)},${j % N}]: got ${got[j]}, want ${ref.out[j]} (|err| ${err} > tol ${tol})`);
          return;
        }
        worst = Math.max(worst, err / (ref.absSum[j]! || 1));
      }
      t.pass();
      if (K > 1000) t.log(`${isa} M=${M} N=${N} K=${K}: worst |err| / sum|terms| = ${worst.toExponential(2)}`);
    });
  });
});

test('matmulBf16 rounds x to bf16 with round-to-nearest-even, NaN and Inf preserved', (t) => {
  // K=1, N=1, w=1.0: out[m] = bf16(x[m]) exactly on every path (normal values).
  const bits = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0]!;
  const x = new Float32Array([
    1, -2.5, bits(0x3f808000) /* tie -> even (down) */, bits(0x3f818000) /* tie -> even (up) */,
    bits(0x3f808001) /* above tie -> up */, bits(0x3f807fff) /* below tie -> down */,
    bits(0x7f7fffff) /* max fp32 -> +Inf */, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
    Number.NaN, bits(0x7f800001) /* signalling NaN with low payload */,
  ]);
  const w = new Uint16Array([fp32ToBf16Bits(1)]);
  forEachIsa(t, (isa) => {
    const got = run(isa, w, x, x.length, 1, 1);
    for (let m = 0; m < x.length; m++) {
      const want = bf16BitsToFp32(fp32ToBf16Bits(x[m]!));
      if (Number.isNaN(want)) t.true(Number.isNaN(got[m]), `${isa}: x=${x[m]} (row ${m}) gives NaN`);
      else t.is(got[m], want, `${isa}: x=0x${new Uint32Array(x.buffer)[m]!.toString(16)} rounds to ${want}`);
    }
  });
  t.is(fp32ToBf16Bits(bits(0x3f808000)), 0x3f80);
  t.is(fp32ToBf16Bits(bits(0x3f818000)), 0x3f82);
  t.is(fp32ToBf16Bits(bits(0x7f7fffff)), 0x7f80);
});

test('matmulBf16 is batch invariant: row m of an M=8 call equals an M=1 call on that row, bitwise', (t) => {
  forEachIsa(t, (isa) => {
    for (const [N, K] of [[9, 1], [5, 7], [7, 33], [6, 100], [13, 2048 + 5]] as const) {
      const M = 8;
      const { w, x } = problem(7 * K + N, M, N, K);
      const batch = run(isa, w, x, M, N, K);
      for (let m = 0; m < M; m++) {
        const single = run(isa, w, x.subarray(m * K, (m + 1) * K), 1, N, K);
        assertBitwiseEqual(t, batch.subarray(m * N, (m + 1) * N), single, `${isa} N=${N} K=${K} row ${m}`);
      }
      // Columns do not depend on N either: weight row n alone gives the same out[:, n].
      const n = N - 1;
      const column = run(isa, w.subarray(n * K, (n + 1) * K), x, M, 1, K);
      assertBitwiseEqual(t, column, Float32Array.from({ length: M }, (_, m) => batch[m * N + n]!), `${isa} N=${N} K=${K} column ${n}`);
    }
  });
});

testWhen(native.availableIsas().includes('avx2'), 'CPU lacks avx2')('avx2 and scalar agree bitwise (exact bf16 products, same 8-lane order and reduction tree)', (t) => {
  for (const [M, N, K] of [[3, 5, 7], [2, 9, 100], [5, 6, 2048 + 5]] as const) {
    const { w, x } = problem(31 * K, M, N, K);
    assertBitwiseEqual(t, run('avx2', w, x, M, N, K), run('scalar', w, x, M, N, K), `M=${M} N=${N} K=${K}`);
  }
});

test('matmulBf16 handles empty shapes', (t) => {
  const out = new Float32Array(6).fill(Number.NaN);
  probes.matmulBf16(new Uint16Array(0), new Float32Array(0), out, 2, 3, 0); // K=0: sums of nothing
  t.deepEqual(Array.from(out), [0, 0, 0, 0, 0, 0]);
  t.notThrows(() => probes.matmulBf16(new Uint16Array(12), new Float32Array(0), new Float32Array(0), 0, 3, 4));
  t.notThrows(() => probes.matmulBf16(new Uint16Array(0), new Float32Array(8), new Float32Array(0), 2, 0, 4));
});

test('matmulBf16 throws TypeError / RangeError on bad arguments, and keeps working', (t) => {
  const [M, N, K] = [2, 3, 4];
  const w = new Uint16Array(N * K);
  const x = new Float32Array(M * K);
  const out = new Float32Array(M * N);
  const call = (...args: unknown[]) => () => (probes.matmulBf16 as (...a: unknown[]) => void)(...args);

  t.throws(call(), { instanceOf: TypeError, message: /matmulBf16: w .* must be a Uint16Array, got undefined/ });
  t.throws(call(new Float32Array(N * K), x, out, M, N, K), { instanceOf: TypeError, message: /w .* must be a Uint16Array, got Float32Array/ });
  t.throws(call(Array.from(w), x, out, M, N, K), { instanceOf: TypeError, message: /got Array/ });
  t.throws(call(w, new Float64Array(M * K), out, M, N, K), { instanceOf: TypeError, message: /x .* must be a Float32Array, got Float64Array/ });
  t.throws(call(w, x, x.buffer, M, N, K), { instanceOf: TypeError, message: /out .* must be a Float32Array, got ArrayBuffer/ });
  t.throws(call(w, x, out, '2', N, K), { instanceOf: TypeError, message: /M must be a number, got string/ });
  t.throws(call(w, x, out, M, -3, K), { instanceOf: RangeError, message: /N must be a non-negative integer, got -3/ });
  t.throws(call(w, x, out, M, N, 4.5), { instanceOf: RangeError, message: /K must be a non-negative integer/ });
  t.throws(call(w, x, out, Number.NaN, N, K), { instanceOf: RangeError, message: /M must be a non-negative integer, got NaN/ });
  t.throws(call(w, x, out, M, N, 5), { instanceOf: RangeError, message: /w has 12 elements, expected N\*K = 15/ });
  t.throws(call(w, x, out, 3, N, K), { instanceOf: RangeError, message: /x has 8 elements, expected M\*K = 12/ });
  t.throws(call(w, x, new Float32Array(5), M, N, K), { instanceOf: RangeError, message: /out has 5 elements, expected M\*N = 6/ });
  t.throws(call(w, x, out, M, 2 ** 40, 2 ** 40), { instanceOf: RangeError, message: /w has 12 elements, expected N\*K = \(overflow\)/ });
  t.throws(call(w, x, out, M, N, K, 'sse4'), { instanceOf: RangeError, message: /isa 'sse4' is not a known ISA \(expected one of avx512bf16, avx512, avx2, neon-bf16, neon, scalar, amx\)/ });
  t.throws(call(w, x, out, M, N, K, 2), { instanceOf: TypeError, message: /isa must be a string/ });

  const shared = new ArrayBuffer(64);
  t.throws(call(new Uint16Array(shared, 0, N * K), x, new Float32Array(shared, 16, M * N), M, N, K), {
    instanceOf: RangeError,
    message: /out must not overlap w/,
  });

  // An ISA this CPU lacks is a clear error, not a crash.
  const available = native.availableIsas();
  for (const isa of ['avx512bf16', 'avx512', 'avx2', 'neon-bf16', 'neon'] as const) {
    if (available.includes(isa)) continue;
    t.log(`CPU lacks '${isa}': checking that forcing it per call throws`);
    t.throws(call(w, x, out, M, N, K, isa), { message: new RegExp(`isa '${isa}' cannot run on this CPU: it lacks`) });
  }

  // out may alias x (x is rounded into a private copy first).
  const xa = new Float32Array([1, 2, 3, 4]);
  probes.matmulBf16(toBf16Array([1, 1, 1, 1]), xa, xa, 2, 2, 2, 'scalar'); // w [2,2] of ones, x [2,2]
  t.deepEqual(Array.from(xa), [3, 3, 7, 7]);

  probes.matmulBf16(w, x, out, M, N, K);
  t.deepEqual(Array.from(out), [0, 0, 0, 0, 0, 0]);
});
