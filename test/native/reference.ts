// Plain reference for the probes addon's matmulBf16, in fp64:
//   out[m, n] = sum_k bf16(x[m, k]) * w[n, k]
//   w [N, K] bf16 bits, x [M, K] fp32, out [M, N]
// Also returns absSum[m, n] = sum_k |bf16(x[m, k]) * w[n, k]|, the scale that
// fp32 accumulation error is measured against.
import { bf16BitsToFp32, fp32ToBf16Bits } from './bf16.js';

export interface MatmulReference {
  out: Float64Array; // [M, N]
  absSum: Float64Array; // [M, N]
}

export function matmulBf16Reference(w: Uint16Array, x: Float32Array, M: number, N: number, K: number): MatmulReference {
  const xr = Float64Array.from(x, (v) => bf16BitsToFp32(fp32ToBf16Bits(v))); // [M, K]
  const wf = Float64Array.from(w, (b) => bf16BitsToFp32(b)); // [N, K]
  const out = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = xr[m * K + k]! * wf[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      out[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { out, absSum };
}
