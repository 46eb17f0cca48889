// Messages the detokenizer actor receives, and its replies. The actor holds
// one IncrementalDetokenizer per request id: create it, add tokens (each add
// answers with the new text), free it. Its owner frees every request it
// created, whether it finished, stopped on a stop string, or was aborted
// (an add with `final: true` frees too).
import type { ActorRef } from '../../runtime/index.js';
import type { TokenizerErrorInfo } from '../tokenizer/errors.js';
import type { DetokenizeParams } from './incremental.js';

export type CreateReply = { ok: true } | { ok: false; error: TokenizerErrorInfo };

export interface TokensForRequest {
  requestId: string;
  tokenIds: number[];
  /** The request finished: flush held-back text and free its state. */
  final?: boolean;
}

export type DeltaReply =
  | {
    ok: true;
    requestId: string;
    delta: string;
    /** A stop string matched: finish the request with reason 'stop' (later tokens are ignored). */
    stop: string | null;
  }
  | { ok: false; requestId: string; error: TokenizerErrorInfo };

export type DetokenizerMessage =
  | {
    type: 'create';
    requestId: string;
    params: DetokenizeParams;
    /**
     * Tokens generated before a restart whose text was already sent: they are
     * consumed without producing deltas, so the stream resumes where it was.
     */
    replayTokens?: number[];
    replyTo?: ActorRef<CreateReply>;
  }
  | { type: 'add'; requestId: string; tokenIds: number[]; final?: boolean; replyTo: ActorRef<DeltaReply> }
  /** One engine step's tokens for many requests; replies in the same order. */
  | { type: 'add-batch'; items: TokensForRequest[]; replyTo: ActorRef<DeltaReply[]> }
  | { type: 'free'; requestId: string }
  /** How many requests have state (tests check nothing leaks). */
  | { type: 'count'; replyTo: ActorRef<number> };
