// Shared test helpers for native kernels.
import test, { type ExecutionContext, type Implementation } from 'ava';
import { ISAS, loadNative, type Isa } from '../../native/index.js';

/**
 * `test` when this machine can run it, else `test.skip` with the reason in the
 * title, so a path the CPU (or the TROUPE_CPU_FEATURES cap) lacks shows up as
 * skipped in ava's output instead of passing.
 */
export function testWhen(runnable: boolean, reason: string): (title: string, impl: Implementation<[]>) => void {
  return (title, impl) => (runnable ? test(title, impl) : test.skip(`${title} [skipped: ${reason}]`, impl));
}

/** Bitwise equality of two fp32 arrays, reporting the first differing index. */
export function assertBitwiseEqual(t: ExecutionContext, got: Float32Array, want: Float32Array, what: string): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  t.is(g.length, w.length, `${what}: lengths differ`);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      t.fail(`${what}: element ${i} differs bitwise: ${got[i]} (0x${g[i]!.toString(16)}) vs ${want[i]} (0x${w[i]!.toString(16)})`);
      return;
    }
  }
  t.pass();
}

/** The architectures whose builds hold each ISA's kernels. */
const ISA_ARCH: Record<Isa, readonly string[]> = {
  avx512bf16: ['x64'], avx512: ['x64'], avx2: ['x64'], amx: ['x64'],
  'neon-bf16': ['arm64'], neon: ['arm64'], scalar: ['x64', 'arm64'],
};

/**
 * Calls `body` for every ISA this CPU runs; logs each one it lacks. Returns the
 * ISAs run so a test can assert that scalar and the best path were covered.
 */
export function forEachIsa(t: ExecutionContext, body: (isa: Isa) => void): Isa[] {
  const native = loadNative();
  const available = native.availableIsas();
  const ran: Isa[] = [];
  for (const isa of ISAS) {
    if (!ISA_ARCH[isa].includes(process.arch)) continue; // another architecture's kernels: not in this build
    if (!available.includes(isa)) {
      t.log(`CPU lacks ISA '${isa}': its kernels are NOT tested on this machine`);
      continue;
    }
    body(isa);
    ran.push(isa);
  }
  t.true(ran.includes('scalar'), 'scalar path ran');
  t.true(ran.includes(available[0]!), `best path '${available[0]}' ran`);
  return ran;
}
