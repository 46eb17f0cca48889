// The gateway's adapter over the engine front's protocol (through Troupe):
// each prompt of a request is one submit (validated and tokenized once, in
// the engine, its n choices admitted together); the choices' deltas run as
// one GenerationRun, kept here so a shutdown can end them. The engine's
// typed errors become OpenAI errors here.
import { Observable } from 'rxjs';
import type { EngineError } from '../actors/front/protocol.js';
import { EngineRequestError } from '../actors/front/protocol.js';
import type { RequestDelta } from '../actors/front/request-record.js';
import type { GenerationParams } from '../actors/engine/request-params.js';
import type { SubmitOptions, Troupe } from '../actors/engine/troupe.js';
import { ChatTemplateError, PromptError, PromptTooLongError } from '../actors/tokenizer/errors.js';
import type { TokenizeOptions, TokenizerInfo } from '../actors/tokenizer/messages.js';
import type { PromptInput } from '../actors/tokenizer/prompt.js';
import { Vocabulary } from '../actors/tokenizer/vocabulary.js';
import { ApiError, badRequest } from './errors.js';
import { GenerationRun, type RunHandlers } from './generation-run.js';
import type { GatewayMetrics } from './metrics.js';
import type { PreparedPrompt } from './openai-format.js';
import { vocabularyTexts, type TokenTexts } from './logprobs-format.js';

export { PromptTooLongError };

/** One prompt in the engine: how it was tokenized, and its choices' deltas. */
export interface SubmittedPrompt {
  prompt: PreparedPrompt;
  requestIds: string[];
  streams: Observable<RequestDelta>[];
}

export class EngineClient {
  private readonly runs = new Set<GenerationRun>();

  private constructor(
    readonly troupe: Troupe,
    readonly info: TokenizerInfo,
    readonly vocab: Vocabulary,
    readonly texts: TokenTexts,
    private readonly metrics: GatewayMetrics,
  ) {}

  static async create(troupe: Troupe, modelDir: string, metrics: GatewayMetrics): Promise<EngineClient> {
    const info = await troupe.tokenizerInfo();
    const vocab = Vocabulary.load(modelDir);
    const client = new EngineClient(troupe, info, vocab, vocabularyTexts(vocab), metrics);
    await troupe.observeRequests((event) => metrics.onRequestEvent(event));
    return client;
  }

  get maxModelLen(): number {
    return this.troupe.maxModelLen;
  }

  get inFlight(): number {
    return this.runs.size;
  }

  /** Token ids of a prompt, and the text echo returns (/tokenize). PromptTooLongError when it exceeds max_model_len (the caller words it). */
  async tokenize(prompt: PromptInput, options: Omit<TokenizeOptions, 'maxTokens'>): Promise<PreparedPrompt> {
    let reply;
    try {
      reply = await this.troupe.tokenizePrompt(promptOf(prompt), options);
    } catch (error) {
      if (error instanceof PromptTooLongError) throw error;
      if (error instanceof PromptError) throw badRequest(error.message, 'prompt');
      if (error instanceof ChatTemplateError) throw badRequest(error.message, 'messages');
      throw new ApiError(500, `tokenizer: ${(error as Error).message}`);
    }
    return this.prepared(prompt, reply.promptTokenIds, reply.prompt);
  }

  async detokenize(tokenIds: number[]): Promise<string> {
    try {
      return await this.troupe.decode(tokenIds);
    } catch (error) {
      if (error instanceof PromptError) throw badRequest(error.message, 'tokens');
      throw new ApiError(500, `tokenizer: ${(error as Error).message}`);
    }
  }

  /**
   * Submits one prompt with its n choices. Throws the engine's refusal as an
   * EngineRequestError (see apiErrorOf) or an EngineUnavailableError.
   */
  async submit(prompt: PromptInput, params: GenerationParams, options: SubmitOptions): Promise<SubmittedPrompt> {
    const submitted = await this.troupe.submit(promptOf(prompt), params, options);
    return { prompt: this.prepared(prompt, submitted.promptTokenIds, submitted.promptText), requestIds: submitted.requestIds, streams: submitted.streams };
  }

  /** Ends requests that were submitted but will not run (their client went away, or another prompt of theirs was refused). */
  abort(requestIds: string[]): void {
    for (const id of requestIds) this.troupe.abort(id);
  }

  /** Runs every choice's deltas; `arrivalMs` (performance.now()) is when the request came in, for the latency metrics. */
  run(streams: Observable<RequestDelta>[], arrivalMs: number, handlers: RunHandlers): GenerationRun {
    const timed = streams.map((stream) => {
      const timer = this.metrics.timer(arrivalMs);
      return new Observable<RequestDelta>((subscriber) => stream.subscribe({
        next: (delta) => { timer.onDelta(delta); subscriber.next(delta); },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }));
    });
    const run = new GenerationRun(timed, handlers, () => this.runs.delete(run));
    this.runs.add(run);
    return run.start();
  }

  /** Ends every run in flight with finish_reason "abort" (shutdown). */
  abortAll(): void {
    for (const run of [...this.runs]) run.abort();
  }

  private prepared(prompt: PromptInput, tokenIds: number[], text: string | null): PreparedPrompt {
    return { tokenIds, text: prompt.kind === 'chat' ? '' : text ?? this.vocab.decode(tokenIds, false) };
  }
}

/**
 * The engine's refusal as an OpenAI error: 400 naming the parameter (in the
 * API's snake_case, or as `fields` names an engine field: structuredOutput
 * comes from whichever of response_format, structured_outputs, guided_* the
 * client used), 503 when the engine cannot take requests. A context_length
 * error is worded by the caller (it knows what the client asked for):
 * `contextLength` gets the prompt's length.
 */
export function apiErrorOf(error: EngineError, contextLength: (promptLength: number) => ApiError, fields: Record<string, string> = {}): ApiError {
  switch (error.code) {
    case 'invalid_params':
    case 'invalid_grammar': {
      const param = error.field ? fields[error.field] ?? snakeCase(error.field) : null;
      const message = error.field && param && error.message.startsWith(error.field) ? param + error.message.slice(error.field.length) : error.message;
      return badRequest(message, param);
    }
    case 'invalid_prompt':
      return badRequest(error.message, 'prompt');
    case 'chat_template':
      return badRequest(error.message, 'messages');
    case 'context_length':
      return contextLength(error.promptLength ?? 0);
    case 'unavailable':
      return new ApiError(503, error.message);
    case 'duplicate_id':
    case 'internal':
      return new ApiError(500, error.message);
  }
}

export function isEngineRequestError(error: unknown): error is EngineRequestError {
  return error instanceof EngineRequestError;
}

function promptOf(prompt: PromptInput) {
  if (prompt.kind === 'text') return prompt.text;
  if (prompt.kind === 'tokens') return prompt.tokenIds;
  return { messages: prompt.messages };
}

function snakeCase(name: string): string {
  const special: Record<string, string> = { maxTokens: 'max_tokens', logprobs: 'logprobs', promptLogprobs: 'logprobs' };
  return special[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
