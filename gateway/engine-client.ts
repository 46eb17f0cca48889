// The gateway's side of the engine: tokenizing with the tokenizer actor,
// starting a request's choices as one GenerationRun, and keeping the runs in
// flight so a shutdown can end them. Errors the client caused come out as
// ApiErrors (400).
import { Observable } from 'rxjs';
import { Actor } from '../runtime/index.js';
import type { RequestDelta } from '../actors/front/request-record.js';
import { GrammarSpecError, type GrammarSpec } from '../actors/grammar/grammar-spec.js';
import { InvalidParamsError, validateGenerationParams, type GenerationParams } from '../actors/engine/request-params.js';
import { API_ASK_TIMEOUT_MS, PATHS, type Troupe } from '../actors/engine/troupe.js';
import { reviveTokenizerError } from '../actors/tokenizer/errors.js';
import type { DecodeReply, TokenizeOptions, TokenizeReply, TokenizerInfo, TokenizerMessage } from '../actors/tokenizer/messages.js';
import type { PromptInput } from '../actors/tokenizer/prompt.js';
import { Vocabulary } from '../actors/tokenizer/vocabulary.js';
import type { RequestEvent } from '../actors/messages/front.js';
import { ApiError, badRequest } from './errors.js';
import { GenerationRun, type RunHandlers } from './generation-run.js';
import type { GatewayMetrics } from './metrics.js';
import type { PreparedPrompt } from './openai-format.js';
import { vocabularyTexts, type TokenTexts } from './logprobs-format.js';

/** The tokenizer refused a prompt longer than max_model_len (the gateway words the error as vLLM does). */
export class PromptTooLongError extends Error {
  constructor(readonly promptLength: number) {
    super(`the prompt is ${promptLength} tokens long`);
  }
}

export interface ChoiceSpec {
  tokenIds: number[];
  params: GenerationParams;
}

/** Tells the gateway's metrics about every request the engine front sees. */
class RequestEventsListener extends Actor<RequestEvent> {
  constructor(private readonly onEvent: (event: RequestEvent) => void) {
    super();
  }

  receive(event: RequestEvent): void {
    this.onEvent(event);
  }
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
    const tokenizer = troupe.system.refFor<TokenizerMessage>(PATHS.tokenizer);
    const info = await tokenizer.ask<TokenizerInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    const vocab = Vocabulary.load(modelDir);
    const client = new EngineClient(troupe, info, vocab, vocabularyTexts(vocab), metrics);
    const listener = await troupe.spawnExtension<RequestEvent>('gateway-metrics', { factory: () => new RequestEventsListener((e) => metrics.onRequestEvent(e)), mailbox: { capacity: 1 << 16 } });
    troupe.watchRequests(listener);
    return client;
  }

  get maxModelLen(): number {
    return this.troupe.maxModelLen;
  }

  get inFlight(): number {
    return this.runs.size;
  }

  /** Token ids of a prompt, and the text echo returns; no length check beyond max_model_len (the caller words it). */
  async tokenize(prompt: PromptInput, options: Omit<TokenizeOptions, 'maxTokens'>): Promise<PreparedPrompt> {
    const tokenizer = this.troupe.system.refFor<TokenizerMessage>(PATHS.tokenizer);
    const reply = await tokenizer.ask<TokenizeReply>((replyTo) => ({ type: 'tokenize', prompt, options, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    if (!reply.ok) throw this.clientError(reply.error.name, reply.error.message);
    const text = reply.prompt ?? this.vocab.decode(reply.promptTokenIds, false);
    return { tokenIds: reply.promptTokenIds, text: prompt.kind === 'chat' ? '' : text };
  }

  async detokenize(tokenIds: number[]): Promise<string> {
    const tokenizer = this.troupe.system.refFor<TokenizerMessage>(PATHS.tokenizer);
    const reply = await tokenizer.ask<DecodeReply>((replyTo) => ({ type: 'decode', tokenIds, replyTo }), { timeoutMs: API_ASK_TIMEOUT_MS });
    if (!reply.ok) throw this.clientError(reply.error.name, reply.error.message);
    return reply.text;
  }

  /** Throws a 400 naming the field (in the API's snake_case) if the engine would refuse these parameters. */
  checkParams(params: GenerationParams): void {
    try {
      validateGenerationParams(params, this.info.vocabSize);
    } catch (error) {
      if (!(error instanceof InvalidParamsError)) throw error;
      const field = /^(\w+)/.exec(error.message)?.[1] ?? null;
      const param = field ? snakeCase(field) : null;
      throw badRequest(param && field ? error.message.replace(field, param) : error.message, param);
    }
  }

  /** Compiles a request's grammar now (cached by spec), so a bad schema, regex or grammar is a 400 naming `field`. */
  async checkGrammar(spec: GrammarSpec, field: string | null): Promise<void> {
    try {
      await this.troupe.compileGrammar(spec, field ?? 'structured output');
    } catch (error) {
      if (error instanceof GrammarSpecError) throw badRequest(error.message, field);
      throw error;
    }
  }

  /** Starts every choice; `arrivalMs` (performance.now()) is when the request came in, for the latency metrics. */
  run(choices: ChoiceSpec[], arrivalMs: number, handlers: RunHandlers): GenerationRun {
    const streams = choices.map((choice) => {
      const timer = this.metrics.timer(arrivalMs);
      const stream = this.troupe.stream(choice.tokenIds, choice.params);
      return new Observable<RequestDelta>((subscriber) => stream.subscribe({
        next: (delta) => { timer.onDelta(delta); subscriber.next(delta); },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }));
    });
    const run = new GenerationRun(streams, handlers, () => this.runs.delete(run));
    this.runs.add(run);
    return run.start();
  }

  /** Ends every run in flight with finish_reason "abort" (shutdown). */
  abortAll(): void {
    for (const run of [...this.runs]) run.abort();
  }

  private clientError(name: string, message: string): Error {
    const error = reviveTokenizerError({ name, message });
    if (error.name === 'PromptError') {
      const tooLong = /^the prompt is (\d+) tokens long, more than the maximum model length/.exec(message);
      if (tooLong) return new PromptTooLongError(Number(tooLong[1]));
      return badRequest(message, 'prompt');
    }
    if (error.name === 'ChatTemplateError') return badRequest(message, 'messages');
    return new ApiError(500, `tokenizer: ${message}`);
  }
}

function snakeCase(name: string): string {
  const special: Record<string, string> = { maxTokens: 'max_tokens', logprobs: 'logprobs', promptLogprobs: 'logprobs' };
  return special[name] ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
