// A straightforward Llama 3.x forward pass in float64: no paging, no
// batching, no fused weights, one sequence, every position recomputed from
// scratch. The model under test is compared against it teacher forced.
// Weights are read with the project's safetensors reader (upcast exactly);
// everything after that is independent of the native code.
//
// With `bf16`, it follows bfloat16 mode's definition (DESIGN.md, Numerics):
// weight matrices are bf16 (an fp16 checkpoint's are rounded), every matrix
// product's input vector is rounded to bf16, and so are the cached keys and
// values; everything else stays float64.
import { Checkpoint } from '../../models/checkpoint.js';
import { ropeInverseFrequencies } from '../../models/rope.js';
import { readTensorInto } from '../../models/safetensors.js';

interface RefLayer {
  inNorm: Float64Array;
  q: Float64Array; // [Hq D, H]
  k: Float64Array; // [Hkv D, H]
  v: Float64Array;
  o: Float64Array; // [H, Hq D]
  postNorm: Float64Array;
  gate: Float64Array; // [I, H]
  up: Float64Array;
  down: Float64Array; // [H, I]
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** x rounded to the nearest bf16 (ties to even). */
function bf16(x: number): number {
  f32[0] = x;
  const u = u32[0]!;
  u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  return f32[0]!;
}

function read(ckpt: Checkpoint, name: string, shape: number[]): Float64Array {
  const f = new Float32Array(shape.reduce((a, b) => a * b, 1));
  readTensorInto(ckpt.tensor(name, shape), f);
  return Float64Array.from(f);
}

/** y[n] = sum_k w[n, k] x[k] */
function matvec(w: Float64Array, x: Float64Array, N: number, K: number): Float64Array {
  const y = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += w[n * K + k]! * x[k]!;
    y[n] = s;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]!);
}

export class ReferenceLlama {
  private readonly ckpt: Checkpoint;
  private readonly layers: RefLayer[] = [];
  private readonly embed: Float64Array;
  private readonly lmHead: Float64Array;
  private readonly finalNorm: Float64Array;
  private readonly invFreq: Float64Array;

  private readonly round: (v: Float64Array) => Float64Array;

  constructor(dir: string, options: { bf16?: boolean } = {}) {
    this.round = options.bf16 ? (v) => v.map(bf16) : (v) => v;
    const matrix = (name: string, shape: number[]): Float64Array => this.round(read(this.ckpt, name, shape));
    this.ckpt = Checkpoint.open(dir);
    const c = this.ckpt.config;
    const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
    this.embed = matrix('model.embed_tokens.weight', [V, H]);
    this.lmHead = c.tieWordEmbeddings ? this.embed : matrix('lm_head.weight', [V, H]);
    this.finalNorm = read(this.ckpt, 'model.norm.weight', [H]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      this.layers.push({
        inNorm: read(this.ckpt, `${p}input_layernorm.weight`, [H]),
        q: matrix(`${p}self_attn.q_proj.weight`, [c.numHeads * D, H]),
        k: matrix(`${p}self_attn.k_proj.weight`, [c.numKvHeads * D, H]),
        v: matrix(`${p}self_attn.v_proj.weight`, [c.numKvHeads * D, H]),
        o: matrix(`${p}self_attn.o_proj.weight`, [H, c.numHeads * D]),
        postNorm: read(this.ckpt, `${p}post_attention_layernorm.weight`, [H]),
        gate: matrix(`${p}mlp.gate_proj.weight`, [I, H]),
        up: matrix(`${p}mlp.up_proj.weight`, [I, H]),
        down: matrix(`${p}mlp.down_proj.weight`, [H, I]),
      });
    }
    this.invFreq = ropeInverseFrequencies(D, c.ropeTheta, c.ropeScaling);
  }

  private rope(x: Float64Array, heads: number, pos: number): void {
    const D = this.ckpt.config.headDim, half = D / 2;
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < half; i++) {
        const a = pos * this.invFreq[i]!;
        const c = Math.cos(a), s = Math.sin(a);
        const x1 = x[h * D + i]!, x2 = x[h * D + half + i]!;
        x[h * D + i] = x1 * c - x2 * s;
        x[h * D + half + i] = x2 * c + x1 * s;
      }
  }

  /** Log-softmax rows [T, V] of the next-token distribution after each prefix tokens[0..t]. */
  logprobs(tokens: number[]): Float64Array[] {
    const c = this.ckpt.config;
    const H = c.hiddenSize, D = c.headDim, V = c.vocabSize, Hq = c.numHeads, Hkv = c.numKvHeads, I = c.intermediateSize;
    const T = tokens.length;
    let xs = tokens.map((t) => this.embed.slice(t * H, (t + 1) * H));
    for (const L of this.layers) {
      const qs: Float64Array[] = [], ks: Float64Array[] = [], vs: Float64Array[] = [];
      xs.forEach((x, t) => {
        const n = this.round(rmsNorm(x, L.inNorm, c.rmsNormEps));
        const q = matvec(L.q, n, Hq * D, H), k = matvec(L.k, n, Hkv * D, H);
        this.rope(q, Hq, t);
        this.rope(k, Hkv, t);
        qs.push(q);
        ks.push(this.round(k));
        vs.push(this.round(matvec(L.v, n, Hkv * D, H)));
      });
      xs = xs.map((x, t) => {
        const attn = new Float64Array(Hq * D);
        for (let h = 0; h < Hq; h++) {
          const g = Math.floor(h / (Hq / Hkv));
          const scores = Array.from({ length: t + 1 }, (_, j) => {
            let s = 0;
            for (let d = 0; d < D; d++) s += qs[t]![h * D + d]! * ks[j]![g * D + d]!;
            return s / Math.sqrt(D);
          });
          const m = Math.max(...scores);
          const w = scores.map((s) => Math.exp(s - m));
          const z = w.reduce((a, b) => a + b, 0);
          for (let j = 0; j <= t; j++) for (let d = 0; d < D; d++) attn[h * D + d] += (w[j]! / z) * vs[j]![g * D + d]!;
        }
        const o = matvec(L.o, this.round(attn), H, Hq * D);
        const h1 = x.map((v, i) => v + o[i]!);
        const n2 = this.round(rmsNorm(h1, L.postNorm, c.rmsNormEps));
        const gate = matvec(L.gate, n2, I, H), up = matvec(L.up, n2, I, H);
        const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
        const mlp = matvec(L.down, this.round(act), H, I);
        return h1.map((v, i) => v + mlp[i]!);
      });
    }
    return xs.map((x) => {
      const logits = matvec(this.lmHead, this.round(rmsNorm(x, this.finalNorm, c.rmsNormEps)), V, H);
      let m = -Infinity;
      for (const v of logits) m = Math.max(m, v);
      let z = 0;
      for (const v of logits) z += Math.exp(v - m);
      const lse = m + Math.log(z);
      return logits.map((v) => v - lse);
    });
  }
}
