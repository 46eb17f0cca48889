// /v1/completions and /v1/chat/completions, whatever the transport (HTTP
// JSON, SSE, or a WebSocket message): validate, admit, submit each prompt to
// the engine (which validates the parameters, tokenizes, checks the context
// length and compiles the grammar, once), run every choice, and shape what
// comes back.
//
//   body --schema--> request --plan--> GenerationPlan --admission--> slot
//        --submit per prompt (n choices)--> prompt ids + deltas
//        --shaper--> chunks / response --> sink
//
// Errors before the first chunk are thrown (the caller answers with their
// status); errors after it go to the sink.
import type { GatewayContext } from '../context.js';
import { contextLengthError } from '../context-length.js';
import { apiErrorOf, isEngineRequestError, type SubmittedPrompt } from '../engine-client.js';
import { toApiError } from '../errors.js';
import type { GenerationRun } from '../generation-run.js';
import type { GenerationSink } from '../generation-sink.js';
import { ChatShaper, CompletionShaper } from '../openai-format.js';
import { chatPlan, choiceParams, completionPlan, DEFAULT_COMPLETION_MAX_TOKENS, seedOf, type GenerationPlan } from '../request-mapping.js';
import { chatRequestSchema, completionRequestSchema, parseBody } from '../schemas.js';

export type GenerationKind = 'completion' | 'chat';

export interface GenerationOptions {
  /** performance.now() when the request arrived (latency metrics). */
  arrivalMs: number;
  /** Stream whatever the body says (the WebSocket always streams). */
  forceStream?: boolean;
  /** Told the run once it started (the WebSocket cancels through it). */
  onRun?: (run: GenerationRun) => void;
  /** The request's X-Request-Id (with --enable-request-id-headers), for its log line. */
  requestId?: string;
}

export async function serveGeneration(ctx: GatewayContext, kind: GenerationKind, body: unknown, sink: GenerationSink, options: GenerationOptions): Promise<void> {
  const { plan, requestedModel } = kind === 'chat' ? planChat(ctx, body) : planCompletion(ctx, body);
  const model = ctx.models.resolve(requestedModel);
  const release = ctx.admission.acquire(plan.prompts.length * plan.n);
  const trace = ctx.requestLog?.start(kind === 'chat' ? '/v1/chat/completions' : '/v1/completions', options.requestId, options.arrivalMs, plan.n, plan.prompts.length * plan.n);
  try {
    const submitted = await submitAll(ctx, plan);
    const prompts = submitted.map((p) => p.prompt);
    trace?.setPromptTokens(prompts.reduce((sum, p) => sum + p.tokenIds.length, 0));
    if (!sink.open) {
      ctx.engine.abort(submitted.flatMap((p) => p.requestIds));
      return trace?.end('client gone');
    }
    const stream = options.forceStream ?? plan.stream;
    const shaper = plan.kind === 'chat' ? new ChatShaper(plan, model, prompts, ctx.engine.texts) : new CompletionShaper(plan, model, prompts, ctx.engine.texts);
    await new Promise<void>((resolve) => {
      if (stream && shaper instanceof ChatShaper) for (const chunk of shaper.start()) sink.chunk(chunk);
      const run = ctx.engine.run(submitted.flatMap((p) => p.streams), options.arrivalMs, {
        next: (event) => {
          trace?.onDelta(event);
          const chunks = shaper.onDelta(event);
          if (stream) for (const chunk of chunks) sink.chunk(chunk);
        },
        complete: () => {
          if (stream) {
            const usage = shaper.usageChunk();
            if (usage) sink.chunk(usage);
            sink.done();
          } else {
            sink.respond(shaper.response());
          }
          trace?.end('finished');
          resolve();
        },
        error: (error) => {
          const apiError = toApiError(error);
          trace?.end('failed', apiError.message);
          sink.fail(apiError);
          resolve();
        },
      });
      options.onRun?.(run);
      sink.onGone(() => {
        run.detach(); // the engine aborts the requests; their KV blocks return
        trace?.end('client gone');
        resolve();
      });
    });
  } catch (error) {
    trace?.end('failed', toApiError(error).message);
    throw error;
  } finally {
    release();
  }
}

function planCompletion(ctx: GatewayContext, body: unknown) {
  const request = parseBody(completionRequestSchema, body);
  return { plan: completionPlan(request, ctx.defaults), requestedModel: request.model };
}

function planChat(ctx: GatewayContext, body: unknown) {
  const request = parseBody(chatRequestSchema, body);
  return { plan: chatPlan(request, ctx.defaults, ctx.toolCalls), requestedModel: request.model };
}

/**
 * Submits every prompt with its n choices (choice i's seed: the request's + i,
 * seedOf); if one is refused, the others are aborted and its error thrown.
 */
async function submitAll(ctx: GatewayContext, plan: GenerationPlan): Promise<SubmittedPrompt[]> {
  const baseSeed = plan.seed ?? ctx.seeds.next();
  const { maxTokens, maxTokensDefault } = maxTokensOf(plan);
  const params = { ...choiceParams(plan, maxTokens ?? 0, seedOf(baseSeed, 0)), n: plan.n };
  if (maxTokens === undefined) delete params.maxTokens;
  const results = await Promise.allSettled(plan.prompts.map((prompt) => ctx.engine.submit(prompt, params, {
    tokenize: plan.tokenizeOptions, ...(maxTokensDefault ? { maxTokensDefault } : {}),
  })));
  const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!refused) return results.map((r) => (r as PromiseFulfilledResult<SubmittedPrompt>).value);
  ctx.engine.abort(results.flatMap((r) => (r.status === 'fulfilled' ? r.value.requestIds : [])));
  const error: unknown = refused.reason;
  if (!isEngineRequestError(error)) throw error;
  // the context-length refusal in vLLM's words, with what the client asked for
  const asked = plan.promptOnly ? 0 : plan.maxTokens ?? (plan.kind === 'chat' ? null : DEFAULT_COMPLETION_MAX_TOKENS);
  throw apiErrorOf(error.error, (promptLength) => contextLengthError(ctx.engine.maxModelLen, promptLength, asked),
    plan.grammarField ? { structuredOutput: plan.grammarField } : {});
}

/**
 * Each choice's max tokens (vLLM's defaults): the client's; echo with
 * max_tokens 0 runs one step (for the prompt's logprobs) whose token is
 * dropped; else 16 for completions and the rest of the context for chat.
 */
function maxTokensOf(plan: GenerationPlan): { maxTokens?: number; maxTokensDefault?: 'context' } {
  if (plan.promptOnly) return { maxTokens: 1 };
  if (plan.maxTokens !== null) return { maxTokens: plan.maxTokens };
  return plan.kind === 'chat' ? { maxTokensDefault: 'context' } : { maxTokens: DEFAULT_COMPLETION_MAX_TOKENS };
}
