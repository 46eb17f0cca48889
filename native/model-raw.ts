// Types of the model exports of the addon (native/src/bindings/model_binding.h).
// models/ wraps them; the kernels on their own are the probes addon's (probes.ts).
import type { RawCollectiveHandle, RawLinkHandle } from './collectives-raw.js';
import type { Isa } from './isa.js';

/** Sampling params of R rows as parallel arrays (native/src/sampling/sampling.h has the order of operations). */
export interface SamplingArrays {
  temperature: Float32Array; // [R] 0 = greedy
  topK: Int32Array; // [R] <= 0: off
  topP: Float32Array; // [R] 1: off
  minP: Float32Array; // [R] 0: off
  presencePenalty: Float32Array; // [R]
  frequencyPenalty: Float32Array; // [R]
  repetitionPenalty: Float32Array; // [R] 1: off
  seed: Float64Array; // [R] non-negative integers < 2^53
  outputIndex: Float64Array; // [R] index of the token being sampled in the request's output
  numLogprobs: Int32Array; // [R] top-n raw logprobs to return, < 0: none
  promptTokens: Int32Array; // flat; row r's are [promptOffsets[r], promptOffsets[r+1])
  promptOffsets: Int32Array; // [R + 1]
  outputTokens: Int32Array; // flat, as promptTokens
  outputOffsets: Int32Array; // [R + 1]
  biasIds: Int32Array; // flat logit-bias ids
  biasValues: Float32Array; // flat logit-bias values
  biasOffsets: Int32Array; // [R + 1]
  /** Grammar masks: row r's is masks[maskIndex[r] * W, +W) with W = ceil(V / 32), bit set = token allowed; -1: none. */
  maskIndex?: Int32Array; // [R]
  masks?: Uint32Array; // [masked rows, W]
}

/**
 * What one rank of a tensor / pipeline group holds (native/src/model/model_parallel.h).
 * The desc's heads / kvHeads / intermediate / layers are then the rank's local
 * counts, vocab the full vocabulary; o and down are stored segment-major when tpSize > 1.
 */
interface NativeShardDesc {
  tpSize: number; // 1, 2, 4 or 8
  tpRank: number;
  vocabStart: number; // embed / lmHead rows held: [vocabStart, vocabEnd) of [V, H]
  vocabEnd: number;
  embeds: boolean; // first pipeline stage: embeds tokens (else takes `hidden`)
  lmHead: boolean; // last pipeline stage: samples (else returns `hidden`)
  group?: RawCollectiveHandle | RawLinkHandle; // the stage's tensor group as tpRank (tpSize > 1): shared memory or node link
  collectiveTimeoutMs?: number;
}

/**
 * An FP8 linear's weight (native/src/model/linear.h): e4m3 codes resident as stored,
 * one byte per weight, with per-output-channel scales (a per-tensor scale
 * repeated). The input is quantized per token: with the static `inputScale`,
 * or dynamically (scale = max(min(absmax, activationUb) / 448, 1 / (448 * 512))).
 */
export interface NativeFp8Linear {
  fp8: Uint8Array; // [N, K] e4m3fn codes
  scale: Float32Array; // [N]
  /** Static activation scale; absent or 0: dynamic per token. */
  inputScale?: number;
  /** Dynamic scales clamp the row's absmax to this (FBGEMM's activation_scale_ub); absent: no clamp. */
  activationUb?: number;
}

/** A linear layer's weight [N, K]: bf16 bits / fp32 by dtype, or FP8 (bfloat16 mode only). */
export type NativeLinear = Uint16Array | Float32Array | NativeFp8Linear;

/** Weights and shape for modelCreate; the arrays must stay untouched while the model lives. */
export interface NativeModelDesc {
  isa?: Isa;
  threads: number;
  dtype: 'bfloat16' | 'float32';
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  rmsEps: number;
  invFreq: Float32Array; // [headDim / 2]
  blockSize: number;
  numBlocks: number;
  /** KV cache element type (default 'auto': the dtype's); fp8 ones hold value / scale, one byte each. */
  kvCacheDtype?: 'auto' | 'fp8_e4m3' | 'fp8_e5m2';
  /** FP8 GEMM: 'auto' (the ISA's fastest) or 'table' (the portable conversion; the same bits, for tests). */
  fp8Kernel?: 'auto' | 'table';
  /** FP8 KV cache: per-layer K and V scales (default 1.0). */
  kScales?: Float32Array;
  vScales?: Float32Array;
  /** Sizes the scratch arena at load: tokens of the largest step expected (larger steps grow it). */
  maxBatchTokens?: number;
  /** Sizes the arena's sampled-logits region: sequences of the largest step expected. */
  maxSeqs?: number;
  embed: Uint16Array | Float32Array; // [V, H] bf16 bits (bfloat16) or fp32 (float32); a shard's rows, or empty
  lmHead: NativeLinear; // [V, H]; a shard's rows, or empty
  shard?: NativeShardDesc;
  finalNorm: Float32Array; // [H]
  layerWeights: {
    inputNorm: Float32Array; // [H]
    qkv: NativeLinear; // [(Hq + 2 Hkv) D, H]
    o: NativeLinear; // [H, Hq D]
    postNorm: Float32Array; // [H]
    gateUp: NativeLinear; // [2 I, H]
    down: NativeLinear; // [H, I]
  }[];
}

/** One step's flat batch (native/src/model/model.h). */
export interface NativeStepInput {
  tokens: Int32Array; // [T]
  positions: Int32Array; // [T]
  slotMapping: Int32Array; // [T]
  queryLens: Int32Array; // [S]
  contextLens: Int32Array; // [S]
  blockTables: Int32Array; // [S, maxBlocksPerSeq]
  maxBlocksPerSeq: number;
  sampleRows?: Int32Array; // [R]
  sampling?: SamplingArrays; // R rows
  promptTargets?: Int32Array; // [T], -1: no prompt logprob for that row
  promptTopN?: number;
  /** Also return the sampled rows' raw logits (tests, tools). */
  returnLogits?: boolean;
  /** [T, H] the previous pipeline stage's residual stream (ranks that do not embed). */
  hidden?: Float32Array;
}

export interface NativeStepOutput {
  sampled: Int32Array; // [R]
  sampledLogprobs: Float32Array; // [R]
  topN: number;
  topIds: Int32Array; // [R, topN]
  topLogprobs: Float32Array; // [R, topN]
  promptLogprobs?: Float32Array; // [T], NaN where no target
  promptTopIds?: Int32Array; // [T, promptTopN]
  promptTopLogprobs?: Float32Array; // [T, promptTopN]
  logits?: Float32Array; // [R, V] when returnLogits
  hidden?: Float32Array; // [T, H] residual stream for the next stage (ranks without the lm head)
}

export interface NativeModelStats {
  steps: number;
  tokens: number;
  gemmCalls: number;
  weightBytesRead: number;
  /** High-water mark of the scratch arena. */
  peakScratchBytes: number;
  /** The arena's size (reserved at load from maxBatchTokens / maxSeqs; pages faulted in on use). */
  scratchCapacityBytes: number;
  /** Steps that needed more scratch than the arena had (each grew it). */
  scratchGrowths: number;
  /** Parallel jobs the compute threads ran, and how often a thread blocked in a futex wait. */
  poolJobs: number;
  poolSleeps: number;
  kvCacheBytes: number;
  threads: number;
  /** Rows sampled with top-p alone, and those whose nucleus came from the lm head's records (no scan of the row). */
  topPRows: number;
  topPFromRecords: number;
  /** Tensor-group all-reduces this model's steps made, and their bytes. */
  allReduces: number;
  allReduceBytes: number;
  /** Bytes of every linear's weight matrix this rank holds (its lm head rows included; FP8: 1 per weight). */
  linearWeightBytes: number;
  /** Weight dtype of each linear as the kernels read it, per layer, and of the lm head ('none' before the last pipeline stage). */
  linearDtypes: { qkv: LinearDtype[]; o: LinearDtype[]; gateUp: LinearDtype[]; down: LinearDtype[]; lmHead: LinearDtype | 'none' };
  /** The FP8 GEMM in use (e.g. 'avx512bf16-vbmi'), null when no linear is FP8. */
  fp8Kernel: string | null;
}

type LinearDtype = 'bf16' | 'f32' | 'fp8_e4m3';

/** Opaque handle of a native model. */
export type NativeModelHandle = { readonly __nativeModel: unique symbol };

export interface RawModelExports {
  allocAligned(bytes: number): ArrayBuffer;
  /** A read-only mapping of a whole file (never write through it). */
  mapFile(path: string): ArrayBuffer;
  modelCreate(desc: NativeModelDesc): NativeModelHandle;
  modelStep(handle: NativeModelHandle, input: NativeStepInput): Promise<NativeStepOutput>;
  modelStats(handle: NativeModelHandle): NativeModelStats;
  modelRelease(handle: NativeModelHandle): void;
  /** Per-output-channel e4m3 quantization of bf16 bits or fp32 rows (FBGEMM's scheme). */
  fp8QuantizeWeights(src: Uint16Array | Float32Array, rows: number, cols: number, codes: Uint8Array, scales: Float32Array): void;
  /** Counter-based random weights: out[i] = (2 u(seed, stream, offset + i) - 1) * scale (models/generator.ts). */
  fillUniform(out: Uint16Array | Float32Array, seed: number, stream: number, offset: number, scale: number): void;
}

export const RAW_MODEL_EXPORTS: readonly (keyof RawModelExports)[] = [
  'allocAligned',
  'mapFile',
  'modelCreate',
  'modelStep',
  'modelStats',
  'modelRelease',
  'fp8QuantizeWeights',
  'fillUniform',
];

export function pickModelExports(raw: RawModelExports): RawModelExports {
  const picked = {} as Record<string, unknown>;
  for (const name of RAW_MODEL_EXPORTS) picked[name] = (raw[name] as (...args: unknown[]) => unknown).bind(raw);
  return picked as unknown as RawModelExports;
}
