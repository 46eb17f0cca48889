// The engine's one way in: the engine front's protocol. Every client (the
// programmatic API in troupe.ts, the gateway through it) speaks only this.
//
//   client                               front
//   connect {client} ──────────────────▶ (replies with the engine's state;
//                                         later states come as 'engine-state')
//   submit {requestId, prompt, params} ─▶ validated once, tokenized once,
//          ◀── SubmitReply                its grammar compiled once (if any),
//                                         n choices admitted
//          ◀── deltas [...]               one message per engine step, every
//          ◀── deltas [...]               choice of this client in it; a
//          ◀── failed {requestId, error}  choice's last delta has finishReason
//   abort {requestId} ─────────────────▶ ends it now (finishReason 'abort')
//   watch {observer} ──────────────────▶ RequestEvents from now on
//
// Choice i of a submit with n > 1 has the id `${requestId}-${i}` (n = 1: the
// request id itself) and the seed `seed + i`, so choice 0 reproduces n = 1.
// Errors cross as EngineError values, never as text to parse.
import type { ActorRef } from '../../runtime/index.js';
import type { GenerationParams } from '../engine/request-params.js';
import type { RequestEvent } from '../messages/front.js';
import type { TokenizeOptions } from '../tokenizer/messages.js';
import type { PromptInput } from '../tokenizer/prompt.js';
import type { EngineState } from './engine-availability.js';
import type { RequestDelta } from './request-record.js';

export type { RequestDelta };

export type EngineErrorCode =
  /** A generation parameter is out of range (field: its camelCase name). */
  | 'invalid_params'
  /**
   * The structured output's schema, regex or grammar does not compile (field
   * 'structuredOutput'; a spec of the wrong shape is invalid_params).
   */
  | 'invalid_grammar'
  /** The prompt cannot be tokenized or is refused (empty, ids out of range; field 'prompt'). */
  | 'invalid_prompt'
  /** The chat template is missing or failed (field 'messages'). */
  | 'chat_template'
  /** Prompt plus max tokens do not fit max_model_len (promptLength and maxModelLen say by how much). */
  | 'context_length'
  /** The request id is already in use. */
  | 'duplicate_id'
  /** The engine cannot make progress now (an HTTP 503). */
  | 'unavailable'
  | 'internal';

export interface EngineError {
  code: EngineErrorCode;
  /** The field at fault, or null. */
  field: string | null;
  message: string;
  /** context_length only. */
  promptLength?: number;
  maxModelLen?: number;
}

export interface SubmitRequest {
  requestId: string;
  prompt: PromptInput;
  /** How the prompt is tokenized (BOS, chat template options). */
  tokenize?: Omit<TokenizeOptions, 'maxTokens'>;
  /** n choices; maxTokens omitted: `maxTokensDefault`. seed omitted: a random one. */
  params: GenerationParams;
  /** Max tokens when params has none: a number (16), or 'context' for the rest of the context (chat). */
  maxTokensDefault?: number | 'context';
  /** Who receives the deltas. */
  client: ActorRef<ClientMessage>;
}

export type SubmitReply =
  | {
    ok: true;
    /** The choices' request ids, in choice order. */
    requestIds: string[];
    promptTokenIds: number[];
    /** The prompt as text: the text given or the rendered chat template; null for token prompts. */
    promptText: string | null;
    /** The max tokens each choice runs with. */
    maxTokens: number;
  }
  | { ok: false; error: EngineError };

export type FrontRequest =
  | { type: 'connect'; client: ActorRef<ClientMessage>; replyTo: ActorRef<EngineState> }
  | ({ type: 'submit'; replyTo: ActorRef<SubmitReply> } & SubmitRequest)
  | { type: 'abort'; requestId: string }
  | { type: 'watch-requests'; subscriber: ActorRef<RequestEvent> };

/** What a client receives. */
export type ClientMessage =
  | { type: 'deltas'; deltas: RequestDelta[] }
  /** The request ended without a last delta (the engine became unavailable). */
  | { type: 'failed'; requestId: string; error: EngineError }
  | { type: 'engine-state'; state: EngineState };

/** The choice ids of a submit. */
export function choiceIds(requestId: string, n: number): string[] {
  return n === 1 ? [requestId] : Array.from({ length: n }, (_, i) => `${requestId}-${i}`);
}

/** An EngineError as a thrown error, for adapters that throw (the programmatic API). */
export class EngineRequestError extends Error {
  override name = 'EngineRequestError';
  readonly code: EngineErrorCode;
  readonly field: string | null;
  constructor(readonly error: EngineError) {
    super(error.message);
    this.code = error.code;
    this.field = error.field;
  }
}
