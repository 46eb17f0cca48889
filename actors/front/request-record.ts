// What the engine front keeps per request: enough to resubmit it after the
// engine subtree restarts (prompt, tokens so far, seed) and to stream it
// without repeating or losing a delta (text sent so far).
import type { ActorRef } from '../../runtime/index.js';
import type { FinishReason } from '../scheduler/request.js';
import type { TokenLogprobInfo } from '../messages/rank.js';
import type { GenerationParams } from '../engine/request-params.js';
import type { ClientMessage } from './protocol.js';

export interface TokenLogprob {
  token: number;
  logprob: number;
  top?: TokenLogprobInfo[];
}

/** One streamed piece of a request's output. */
export interface RequestDelta {
  requestId: string;
  /** New text (may be empty while text is held back). */
  text: string;
  tokenIds: number[];
  logprobs?: TokenLogprob[];
  /** On the last delta only. */
  finishReason?: FinishReason;
  /** On the last delta, when asked for: log-probability of each prompt token after the ones before it (null for the first). */
  promptLogprobs?: ({ logprob: number; top?: TokenLogprobInfo[] } | null)[];
}

export class RequestRecord {
  readonly outputTokens: number[] = [];
  readonly logprobs: TokenLogprob[] = [];
  /** Indexed by prompt position. */
  readonly promptLogprobs: ({ logprob: number; top?: TokenLogprobInfo[] } | null)[] = [];
  sentText = '';
  finishReason: FinishReason | null = null;

  constructor(
    readonly id: string,
    readonly promptTokens: number[],
    readonly params: GenerationParams,
    readonly seed: number,
    readonly eosTokenIds: number[],
    /** Who gets its deltas (protocol.ts). */
    readonly client: ActorRef<ClientMessage>,
  ) {}
}
