// Messages the engine front receives from inside the engine (the scheduler,
// the API's statistics); clients speak front/protocol.ts.
import type { ActorRef } from '../../runtime/index.js';
import type { StepTimingTotals } from '../engine/step-timings.js';
import type { FinishReason } from '../scheduler/request.js';
import type { FinishedRequest } from '../scheduler/scheduler.js';
import type { TokenLogprobInfo } from './rank.js';
import type { EngineRequest } from './scheduler.js';

export interface GeneratedToken {
  requestId: string;
  token: number;
  /** Index of this token in the request's output; a token the front already has is ignored. */
  outputIndex: number;
  logprob?: number;
  top?: TokenLogprobInfo[];
  /** On a request's first output token: its prompt tokens found in the prefix cache. */
  cachedTokens?: number;
}

export interface PromptLogprobChunk {
  requestId: string;
  /** Prompt position of values[0]'s target (each value is for the token at position start + 1 + i). */
  start: number;
  values: (number | null)[];
  top?: TokenLogprobInfo[][];
}

/**
 * When a request went through each stage, in ms on the shared clock
 * (performance.timeOrigin + performance.now(), comparable across threads):
 * submitted to the front -> first admitted by the scheduler (the start of
 * that step) -> first token accepted -> finished.
 */
interface RequestTimes {
  submittedMs: number;
  scheduledMs?: number;
  firstTokenMs?: number;
  finishedMs: number;
}

/** What a request-event subscriber (e.g. a logging extension, the gateway's metrics) is told. */
export type RequestEvent =
  | { type: 'submitted'; requestId: string; promptTokens: number }
  | {
    type: 'finished'; requestId: string; reason: FinishReason; outputTokens: number;
    /** Absent on events from before timings existed (and in tests that make events by hand). */
    promptTokens?: number; maxTokens?: number; n?: number; times?: RequestTimes;
  }
  | { type: 'resubmitted'; requestIds: string[] }
  /** One engine step ran `numBatchedTokens` tokens (prefill chunks and decodes). */
  | { type: 'step'; numBatchedTokens: number };

export type FrontMessage =
  | {
    type: 'step-output'; tokens: GeneratedToken[]; promptLogprobs: PromptLogprobChunk[]; finished: FinishedRequest[];
    /** The step's size and start (shared clock, see RequestTimes), and the requests it took from the waiting queue. */
    step?: { numBatchedTokens: number; startedMs: number; admitted: string[] };
  }
  /** A (re)started scheduler asks for every unfinished request. */
  | { type: 'resubmit-all'; replyTo: ActorRef<EngineRequest[]> }
  /** The front's share of the step time split (front, detokenizer, gateway). */
  | { type: 'timings'; replyTo: ActorRef<StepTimingTotals> };
