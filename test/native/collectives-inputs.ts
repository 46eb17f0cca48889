// Deterministic inputs for the collectives tests, computed identically by the
// test (expected results) and by every rank (its contribution), in threads
// and child processes alike.
import { rng } from './random.js';

/** One run of collectives: the all-reduce length and broadcast size of each iteration. */
export interface CollectivePlan {
  seed: number;
  /** Float32 elements per all-reduce, one entry per iteration (odd ones, 0, 1 MB...). */
  lengths: number[];
  /** Broadcast bytes per iteration; the root is iteration % ranks. */
  broadcastBytes: number[];
}

export const ONE_MB_FLOATS = (1 << 20) / 4;

/** Iterations in a row: odd and even lengths, tiny and 1 MB, so both parities of every slot are reused many times. */
export function standardPlan(seed: number): CollectivePlan {
  const lengths = [1, 7, 2048, 1023, ONE_MB_FLOATS, 4097, 3, 16384, 0, 65537, 2047, 5, ONE_MB_FLOATS - 3, 33, 8191, 1, 2, 12345, 64, 999];
  const broadcastBytes = [0, 1, 100, 5000, 65536, 17, 4096, 3, 70000, 255, 1, 2, 4095, 999, 8, 300, 65535, 1, 0, 12];
  return { seed, lengths, broadcastBytes };
}

/** Bytes the collectives in a plan need (capacity for a group). */
export function planCapacity(plan: CollectivePlan): { capacityBytes: number; broadcastCapacityBytes: number } {
  return {
    capacityBytes: Math.max(4, ...plan.lengths.map((n) => n * 4)),
    broadcastCapacityBytes: Math.max(1, ...plan.broadcastBytes),
  };
}

/**
 * Rank `rank`'s all-reduce input for `iteration`: magnitudes spread over
 * 2^-14 .. 2^20 with both signs, so float32 addition in another order gives
 * other bits (the tests check that it does).
 */
export function rankInput(seed: number, iteration: number, rank: number, length: number): Float32Array {
  const next = rng(((seed * 7919 + iteration) * 104729 + rank * 15485863) >>> 0);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const exponent = Math.floor(next() * 35) - 14;
    const sign = next() < 0.5 ? -1 : 1;
    out[i] = sign * (1 + next()) * 2 ** exponent;
  }
  return out;
}

/** Bytes the root broadcasts in `iteration`. */
export function broadcastPayload(seed: number, iteration: number, length: number): Uint8Array {
  const next = rng((seed * 31337 + iteration * 65599) >>> 0);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Sum in the given rank order, rounding to float32 after every addition. */
export function orderedSum(inputs: Float32Array[], order: number[]): Float32Array {
  const n = inputs[0]!.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let acc = inputs[order[0]!]![i]!;
    for (let k = 1; k < order.length; k++) acc = Math.fround(acc + inputs[order[k]!]![i]!);
    out[i] = acc;
  }
  return out;
}

/** ((v0 + v1) + v2) + ... : what every rank must get. */
export function rankOrderSum(inputs: Float32Array[]): Float32Array {
  return orderedSum(inputs, inputs.map((_, r) => r));
}

/** Number of elements whose bits differ. */
export function bitDifferences(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) d++;
  return d;
}
