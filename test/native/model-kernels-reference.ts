// Plain fp64 references for the forward pass's kernels (native/src/kernels/model_kernels.h).
import { bf16BitsToFp32, fp32ToBf16Bits } from './bf16.js';

/** out[m, n] = sum_k x[m, k] w[n, k] (x rounded to bf16 when w is bf16 bits), and sum |terms|. */
export function gemmReference(w: Uint16Array | Float32Array, x: Float32Array, M: number, N: number, K: number): { out: Float64Array; absSum: Float64Array } {
  const bf16 = w instanceof Uint16Array;
  const wf = Float64Array.from(w as ArrayLike<number>, (v) => (bf16 ? bf16BitsToFp32(v) : v));
  const xf = Float64Array.from(x, (v) => (bf16 ? bf16BitsToFp32(fp32ToBf16Bits(v)) : v));
  const out = new Float64Array(M * N), absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0, a = 0;
      for (let k = 0; k < K; k++) {
        const p = xf[m * K + k]! * wf[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      out[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  return { out, absSum };
}

export interface AttentionProblem {
  D: number;
  numHeads: number;
  kvHeads: number;
  blockSize: number;
  numBlocks: number;
  queryLens: number[];
  contextLens: number[];
  blockTables: number[][];
  q: Float32Array; // [T, numHeads * D]
  /** K / V of every sequence position: keys[s][pos] = [kvHeads * D] */
  keys: Float32Array[][];
  values: Float32Array[][];
}

/** softmax(q k^T / sqrt(D)) v per query over its causal prefix, in fp64. */
export function attentionReference(p: AttentionProblem, round: (v: number) => number): Float64Array {
  const T = p.queryLens.reduce((a, b) => a + b, 0);
  const out = new Float64Array(T * p.numHeads * p.D);
  const group = p.numHeads / p.kvHeads;
  let row = 0;
  p.queryLens.forEach((q, s) => {
    for (let i = 0; i < q; i++, row++) {
      const pos = p.contextLens[s]! - q + i;
      for (let h = 0; h < p.numHeads; h++) {
        const g = Math.floor(h / group);
        const scores: number[] = [];
        for (let j = 0; j <= pos; j++) {
          let dot = 0;
          for (let d = 0; d < p.D; d++) dot += p.q[row * p.numHeads * p.D + h * p.D + d]! * round(p.keys[s]![j]![g * p.D + d]!);
          scores.push(dot / Math.sqrt(p.D));
        }
        const m = Math.max(...scores);
        const w = scores.map((x) => Math.exp(x - m));
        const z = w.reduce((a, b) => a + b, 0);
        for (let d = 0; d < p.D; d++) {
          let acc = 0;
          for (let j = 0; j <= pos; j++) acc += w[j]! * round(p.values[s]![j]![g * p.D + d]!);
          out[row * p.numHeads * p.D + h * p.D + d] = acc / z;
        }
      }
    }
  });
  return out;
}
