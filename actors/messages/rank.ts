// Messages a rank receives.
import type { SamplingParams } from '../../models/sampling.js';
import type { NativeModelStats } from '../../native/model-raw.js';
import type { ActorRef } from '../../runtime/index.js';

/** One request's share of a step, as the rank runs it (see models/batch.ts for the flat layout it becomes). */
export interface RankSequence {
  requestId: string;
  tokens: number[];
  cachedTokens: number;
  blockTable: number[];
  sample?: {
    params: SamplingParams;
    seed: number;
    outputIndex: number;
    promptTokens?: number[];
    outputTokens?: number[];
    /** The grammar's allowed tokens, ceil(V / 32) words (models/sampling.ts SampleRequest.mask). */
    mask?: Uint32Array;
  };
  /** targets[i]: the token whose log-probability after tokens[i] is wanted (-1: none). */
  promptLogprobs?: { targets: number[]; topN: number };
}

export interface TokenLogprobInfo {
  id: number;
  logprob: number;
}

export interface RankSequenceResult {
  requestId: string;
  token?: number;
  logprob?: number;
  top?: TokenLogprobInfo[];
  /** Per query token: the log-probability of its target (null where none). */
  promptLogprobs?: (number | null)[];
  promptTop?: TokenLogprobInfo[][];
}

export interface RankInfo {
  pid: number;
  threadId: number;
  residentWeightBytes: number;
  kvCacheBytes: number;
  steps: number;
  /** Pipeline stage and rank in its tensor group (0 and 0 for a whole model). */
  stage: number;
  tpRank: number;
  /** Tensor-group all-reduces the native steps made. */
  allReduces: number;
  /** Weight dtype of each linear this rank holds (per layer of its stage; lmHead 'none' before the last stage). */
  linearDtypes: NativeModelStats['linearDtypes'];
  /** Point-to-point hand-offs of the residual stream: received from the previous stage, sent to the next. */
  hiddenReceived: number;
  hiddenSent: number;
}

/**
 * A step. The scheduler sends it to every rank of the first stage; a stage
 * that is not the last passes it on, with its residual stream `hidden`
 * [T, H] (transferred, never encoded element by element), to the same tensor
 * rank of the next stage; rank 0 of the last stage replies.
 */
export type RankMessage =
  | { type: 'step'; step: number; sequences: RankSequence[]; hidden?: Float32Array; replyTo: ActorRef<RankSequenceResult[]> }
  | { type: 'info'; replyTo: ActorRef<RankInfo> };
