// /v1/completions and /v1/chat/completions, whatever the transport (HTTP
// JSON, SSE, or a WebSocket message): validate, admit, tokenize, check the
// context length, run every choice in the engine, and shape what comes back.
//
//   body --schema--> request --plan--> GenerationPlan --admission--> slot
//        --tokenizer--> prompt ids --max tokens, seeds--> choices
//        --engine--> deltas --shaper--> chunks / response --> sink
//
// Errors before the first chunk are thrown (the caller answers with their
// status); errors after it go to the sink.
import type { GatewayContext } from '../context.js';
import { contextLengthError, resolveMaxTokens } from '../context-length.js';
import { PromptTooLongError, type ChoiceSpec } from '../engine-client.js';
import { toApiError } from '../errors.js';
import type { GenerationRun } from '../generation-run.js';
import type { GenerationSink } from '../generation-sink.js';
import { ChatShaper, CompletionShaper, type PreparedPrompt } from '../openai-format.js';
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
}

export async function serveGeneration(ctx: GatewayContext, kind: GenerationKind, body: unknown, sink: GenerationSink, options: GenerationOptions): Promise<void> {
  const { plan, requestedModel } = kind === 'chat' ? planChat(ctx, body) : planCompletion(ctx, body);
  const model = ctx.models.resolve(requestedModel);
  const release = ctx.admission.acquire(plan.prompts.length * plan.n);
  try {
    if (plan.params.structuredOutput) await ctx.engine.checkGrammar(plan.params.structuredOutput, plan.grammarField);
    const prompts = await Promise.all(plan.prompts.map((prompt) => tokenize(ctx, plan, prompt)));
    if (!sink.open) return;
    const choices = choicesOf(ctx, plan, prompts);
    const stream = options.forceStream ?? plan.stream;
    const shaper = plan.kind === 'chat' ? new ChatShaper(plan, model, prompts, ctx.engine.texts) : new CompletionShaper(plan, model, prompts, ctx.engine.texts);
    await new Promise<void>((resolve) => {
      if (stream && shaper instanceof ChatShaper) for (const chunk of shaper.start()) sink.chunk(chunk);
      const run = ctx.engine.run(choices, options.arrivalMs, {
        next: (event) => {
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
          resolve();
        },
        error: (error) => {
          sink.fail(toApiError(error));
          resolve();
        },
      });
      options.onRun?.(run);
      sink.onGone(() => {
        run.detach(); // the engine aborts the requests; their KV blocks return
        resolve();
      });
    });
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

async function tokenize(ctx: GatewayContext, plan: GenerationPlan, prompt: GenerationPlan['prompts'][number]): Promise<PreparedPrompt> {
  try {
    return await ctx.engine.tokenize(prompt, plan.tokenizeOptions);
  } catch (error) {
    if (error instanceof PromptTooLongError) {
      const maxTokens = plan.maxTokens ?? (plan.kind === 'chat' ? null : DEFAULT_COMPLETION_MAX_TOKENS);
      throw contextLengthError(ctx.engine.maxModelLen, error.promptLength, maxTokens);
    }
    throw error;
  }
}

/** Each prompt's n choices, with their max tokens and seeds (choice i of a prompt: the request's seed + i). */
function choicesOf(ctx: GatewayContext, plan: GenerationPlan, prompts: PreparedPrompt[]): ChoiceSpec[] {
  const baseSeed = plan.seed ?? ctx.seeds.next();
  const choices = prompts.flatMap((prompt) => {
    const maxTokens = resolveMaxTokens(plan, prompt.tokenIds.length, ctx.engine.maxModelLen);
    return Array.from({ length: plan.n }, (_, i) => ({ tokenIds: prompt.tokenIds, params: choiceParams(plan, maxTokens, seedOf(baseSeed, i)) }));
  });
  for (const choice of choices) ctx.engine.checkParams(choice.params);
  return choices;
}
