// Building one step's flat batch from per-sequence steps, and splitting the
// results back per sequence. The flat layout is what the native step reads
// (native/src/model/model.h, kv_layout.h):
//
//   seq:        0 0 0 0 | 1 | 2 2          (3 sequences, T = 7 tokens)
//   tokens:     a b c d | e | f g
//   positions:  5 6 7 8 | 41| 0 1          cachedTokens + i
//   queryLens:  [4, 1, 2]    contextLens: [9, 42, 2]   (cached + this step)
//   slotMapping[t] = blockTable[pos / blockSize] * blockSize + pos % blockSize
//   blockTables: [S, maxBlocksPerSeq], padded with 0
//
// A sequence is a prefill chunk or a decode only by its counts.
import type { NativeStepInput, NativeStepOutput } from '../native/model-raw.js';
import { packSampling, type SampleRequest } from './sampling.js';

export interface SequenceStep {
  /** This step's tokens: a prompt chunk, or the one token of a decode. */
  tokens: ArrayLike<number>;
  /** Tokens of this sequence already in the KV cache (numComputedTokens). */
  cachedTokens: number;
  /** KV pages of the sequence, in position order; must cover cachedTokens + tokens.length. */
  blockTable: ArrayLike<number>;
  /** Sample a next token after this step's last token. */
  sample?: SampleRequest;
  /**
   * Prompt log-probabilities: targets[i] is the token whose log-probability
   * after tokens[i] is wanted (-1: none). topN adds the top-n at each position.
   */
  promptLogprobs?: { targets: ArrayLike<number>; topN?: number };
}

interface TokenLogprob {
  id: number;
  logprob: number;
}

export interface SequenceResult {
  /** The sampled token (when `sample` was asked). */
  token?: number;
  /** Its raw log-probability. */
  logprob?: number;
  /** The top-n raw log-probabilities (params.logprobs). */
  top?: TokenLogprob[];
  /** Per query token: log-probability of its target (NaN where none). */
  promptLogprobs?: Float32Array;
  /** Per query token: the top-n (promptLogprobs.topN). */
  promptTop?: TokenLogprob[][];
}

export interface PackedStep {
  input: NativeStepInput;
  /** First flat row of each sequence. */
  rowStart: number[];
  /** Index into the sampled rows for each sequence, or -1. */
  sampleIndex: number[];
}

export function packStep(seqs: SequenceStep[], blockSize: number): PackedStep {
  const S = seqs.length;
  const T = seqs.reduce((n, s) => n + s.tokens.length, 0);
  const maxBlocks = Math.max(1, ...seqs.map((s) => Math.ceil((s.cachedTokens + s.tokens.length) / blockSize)));
  const input: NativeStepInput = {
    tokens: new Int32Array(T),
    positions: new Int32Array(T),
    slotMapping: new Int32Array(T),
    queryLens: new Int32Array(S),
    contextLens: new Int32Array(S),
    blockTables: new Int32Array(S * maxBlocks),
    maxBlocksPerSeq: maxBlocks,
  };
  const rowStart: number[] = [];
  const sampleIndex: number[] = [];
  const sampleRows: number[] = [];
  const samples: SampleRequest[] = [];
  const wantPrompt = seqs.some((s) => s.promptLogprobs !== undefined);
  const targets = wantPrompt ? new Int32Array(T).fill(-1) : undefined;
  let promptTopN = 0;
  let row = 0;
  seqs.forEach((s, i) => {
    const q = s.tokens.length;
    const ctx = s.cachedTokens + q;
    const blocks = Math.ceil(ctx / blockSize);
    if (s.blockTable.length < blocks) throw new RangeError(`sequence ${i}: ${ctx} tokens need ${blocks} KV pages, its block table has ${s.blockTable.length}`);
    for (let b = 0; b < blocks; b++) input.blockTables[i * maxBlocks + b] = s.blockTable[b]!;
    input.queryLens[i] = q;
    input.contextLens[i] = ctx;
    rowStart.push(row);
    for (let j = 0; j < q; j++, row++) {
      const pos = s.cachedTokens + j;
      input.tokens[row] = s.tokens[j]!;
      input.positions[row] = pos;
      input.slotMapping[row] = s.blockTable[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize);
    }
    if (s.sample && q > 0) {
      sampleIndex.push(samples.length);
      sampleRows.push(row - 1);
      samples.push(s.sample);
    } else sampleIndex.push(-1);
    if (s.promptLogprobs && targets) {
      const t = s.promptLogprobs.targets;
      if (t.length !== q) throw new RangeError(`sequence ${i}: promptLogprobs.targets has ${t.length} entries, the step has ${q} tokens`);
      for (let j = 0; j < q; j++) targets[rowStart[i]! + j] = t[j]!;
      promptTopN = Math.max(promptTopN, s.promptLogprobs.topN ?? 0);
    }
  });
  if (samples.length > 0) {
    input.sampleRows = Int32Array.from(sampleRows);
    input.sampling = packSampling(samples);
  }
  if (targets) {
    input.promptTargets = targets;
    input.promptTopN = promptTopN;
  }
  return { input, rowStart, sampleIndex };
}

export function unpackStep(seqs: SequenceStep[], packed: PackedStep, out: NativeStepOutput): SequenceResult[] {
  return seqs.map((s, i) => {
    const result: SequenceResult = {};
    const r = packed.sampleIndex[i]!;
    if (r >= 0) {
      result.token = out.sampled[r]!;
      result.logprob = out.sampledLogprobs[r]!;
      const n = Math.max(0, s.sample!.params.logprobs ?? 0);
      if (s.sample!.params.logprobs !== undefined) {
        result.top = [];
        for (let k = 0; k < Math.min(n, out.topN); k++) result.top.push({ id: out.topIds[r * out.topN + k]!, logprob: out.topLogprobs[r * out.topN + k]! });
      }
    }
    if (s.promptLogprobs && out.promptLogprobs) {
      const start = packed.rowStart[i]!;
      const q = s.tokens.length;
      result.promptLogprobs = out.promptLogprobs.slice(start, start + q);
      const n = s.promptLogprobs.topN ?? 0;
      if (n > 0 && out.promptTopIds && out.promptTopLogprobs) {
        const pn = packed.input.promptTopN ?? 0;
        result.promptTop = [];
        for (let j = 0; j < q; j++) {
          const list: TokenLogprob[] = [];
          for (let k = 0; k < n; k++) list.push({ id: out.promptTopIds[(start + j) * pn + k]!, logprob: out.promptTopLogprobs[(start + j) * pn + k]! });
          result.promptTop.push(list);
        }
      }
    }
    return result;
  });
}
