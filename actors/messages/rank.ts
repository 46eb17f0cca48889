// Messages a rank receives.
import type { SamplingParams } from '../../models/sampling.js';
import type { NativeModelStats } from '../../native/model-raw.js';
import type { ActorRef } from '../../runtime/index.js';

/**
 * A request as a rank first learns of it: the rank keeps it (persistent-batch.ts)
 * until the scheduler drops it, so later steps only say what changed.
 */
export interface RankNewRequest {
  requestId: string;
  /** Its KV pages so far, in position order; later steps append (RankBatchDelta.grown). */
  blockTable: number[];
  /** Tokens of the prompt: positions at and past it hold output tokens. */
  promptLength: number;
  params: SamplingParams;
  /** Resolved once by the front, so a recompute reproduces seeded samples. */
  seed: number;
  /**
   * Only for a request with penalties: its prompt and the output tokens known
   * so far; the rank appends each output token as a step computes it.
   */
  penaltyTokens?: { prompt: number[]; output: number[] };
}

/**
 * What changed since the scheduler's last step, applied in this order before
 * the step runs: reset (a new scheduler incarnation: forget everything),
 * dropped (finished, aborted or preempted), added, grown.
 */
export interface RankBatchDelta {
  reset?: boolean;
  dropped: string[];
  added: RankNewRequest[];
  /** Pages appended to a known request's table. */
  grown: { requestId: string; blocks: number[] }[];
}

/** One request's share of a step: this step's tokens only (see models/batch.ts for the flat layout it becomes). */
export interface RankScheduled {
  requestId: string;
  /** Positions [cachedTokens, cachedTokens + tokens.length). */
  tokens: number[];
  cachedTokens: number;
  /** Sample after the last token: the index of the output token to sample (the seeded RNG's counter). */
  outputIndex?: number;
  /**
   * With outputIndex, for a request with a grammar: the tokens it allows this
   * step, ceil(V / 32) words (models/sampling.ts SampleRequest.mask). Per step,
   * since the grammar's state moves with every token.
   */
  mask?: Uint32Array;
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

/** A step's results, in the order of its sequences, and its native step time (summed over the pipeline stages). */
export interface RankStepReply {
  results: RankSequenceResult[];
  nativeMs: number;
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
  /** A tensor group across nodes: what its all-reduces moved over the node links (absent on one machine). */
  tensorLink?: { allReduces: number; bytesSent: number; bytesReceived: number; wireBytesSent: number };
}

/**
 * A rank's vector of one all-reduce of a tensor group across nodes, for the
 * group's other ranks (actors/rank/tensor-link.ts). `group` names the rank
 * group's incarnation, so a late vector of an earlier one is dropped. Taken at
 * delivery, outside the mailbox order: the peer's step waits for it.
 */
export interface TensorPartMessage {
  type: 'tensor-part';
  group: string;
  generation: number;
  from: number;
  /** The vector; with `runs`, only its entries that are not -0.0 (tensor-link.ts packIdentity). */
  part: Float32Array;
  /** [start, end) pairs of the entries kept, and the whole vector's length. */
  runs?: Uint32Array;
  length?: number;
}

/**
 * A step. The scheduler sends it to every rank of the first stage; a stage
 * that is not the last passes it on, with its residual stream `hidden`
 * [T, H] (transferred, never encoded element by element), to the same tensor
 * rank of the next stage; rank 0 of the last stage replies.
 */
export type RankMessage =
  | {
    type: 'step'; step: number; batch: RankBatchDelta; sequences: RankScheduled[];
    /** From the previous stage: its residual stream and the native time of the stages so far. */
    hidden?: Float32Array; nativeMs?: number;
    replyTo: ActorRef<RankStepReply>;
  }
  | { type: 'info'; replyTo: ActorRef<RankInfo> }
  | TensorPartMessage;
