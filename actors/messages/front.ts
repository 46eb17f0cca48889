// Messages the engine front receives from inside the engine (the scheduler,
// the API's statistics); clients speak front/protocol.ts.
import type { ActorRef } from '../../runtime/index.js';
import type { StepTimingTotals } from '../engine/step-timings.js';
import type { FinishReason } from '../scheduler/request.js';
import type { TokenLogprobInfo } from './rank.js';
import type { EngineRequest } from './scheduler.js';

export interface GeneratedToken {
  requestId: string;
  token: number;
  /** Index of this token in the request's output; a token the front already has is ignored. */
  outputIndex: number;
  logprob?: number;
  top?: TokenLogprobInfo[];
}

export interface PromptLogprobChunk {
  requestId: string;
  /** Prompt position of values[0]'s target (each value is for the token at position start + 1 + i). */
  start: number;
  values: (number | null)[];
  top?: TokenLogprobInfo[][];
}

/** What a request-event subscriber (e.g. a logging extension) is told. */
export type RequestEvent =
  | { type: 'submitted'; requestId: string; promptTokens: number }
  | { type: 'finished'; requestId: string; reason: FinishReason; outputTokens: number }
  | { type: 'resubmitted'; requestIds: string[] };

export type FrontMessage =
  | { type: 'step-output'; tokens: GeneratedToken[]; promptLogprobs: PromptLogprobChunk[]; finished: { requestId: string; reason: FinishReason }[] }
  /** A (re)started scheduler asks for every unfinished request. */
  | { type: 'resubmit-all'; replyTo: ActorRef<EngineRequest[]> }
  /** The front's share of the step time split (front, detokenizer, gateway). */
  | { type: 'timings'; replyTo: ActorRef<StepTimingTotals> };
