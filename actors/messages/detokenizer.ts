// Messages the detokenizer receives.
import type { ActorRef } from '../../runtime/index.js';

export interface DetokenizeOptions {
  skipSpecialTokens: boolean;
  stop: string[];
  includeStopStrInOutput: boolean;
}

export type DetokenizeReply =
  | { known: true; text: string; stopMatched: boolean }
  /** No state for this request (e.g. the detokenizer restarted): open it again, then push. */
  | { known: false };

export type DetokenizerMessage =
  /** Starts a request's state; `outputTokens` already sent are replayed silently (after a restart). */
  | { type: 'open'; requestId: string; options: DetokenizeOptions; outputTokens: number[] }
  /** New output tokens; `final` flushes text held back for stop strings or split characters. */
  | { type: 'push'; requestId: string; tokens: number[]; final: boolean; replyTo: ActorRef<DetokenizeReply> }
  | { type: 'close'; requestId: string };
