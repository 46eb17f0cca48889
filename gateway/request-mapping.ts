// OpenAI / vLLM request -> what the engine is asked to do. Plain functions,
// no I/O: a validated body (schemas.ts) becomes a GenerationPlan listing the
// prompts to tokenize, the engine parameters of each choice and how the
// answer is to be shaped (echo, logprobs, streaming, usage).
import type { GenerationParams } from '../actors/engine/request-params.js';
import type { TokenizeOptions } from '../actors/tokenizer/messages.js';
import type { ChatMessage, PromptInput } from '../actors/tokenizer/prompt.js';
import type { SamplingDefaults } from './sampling-defaults.js';
import { badRequest } from './errors.js';
import type { ChatRequest, CompletionRequest } from './schemas.js';
import { structuredOutputOf } from './structured-output.js';
import { templateMessage, toolPlanOf, type ToolCallOptions, type ToolPlan } from './tool-calls.js';

/** vLLM's default for /v1/completions (OpenAI's too). */
export const DEFAULT_COMPLETION_MAX_TOKENS = 16;
/** Seeds stay below the engine's bound on resolved seeds. */
const SEED_SPACE = 2 ** 52;

export interface GenerationPlan {
  kind: 'completion' | 'chat';
  prompts: PromptInput[];
  tokenizeOptions: Omit<TokenizeOptions, 'maxTokens'>;
  /** Choices per prompt. */
  n: number;
  /**
   * Engine parameters shared by every choice; maxTokens left out when the
   * client did not set it (see maxTokens), seed resolved per choice (seedOf).
   */
  params: Omit<GenerationParams, 'n' | 'maxTokens' | 'seed'>;
  /** The client's max_tokens; null: the default (16 for completions, the rest of the context for chat). */
  maxTokens: number | null;
  /** max_tokens 0 with echo (completions): score the prompt, generate nothing. */
  promptOnly: boolean;
  /** The request's seed, or null for a random one per request. */
  seed: number | null;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  /** Completions: return the prompt before the completion. Chat: the text to put before the answer (vLLM's echo). */
  echo: boolean;
  chatEchoText: string | null;
  /**
   * Completions: top-n per token (0: the token's own only). Chat: top_logprobs
   * (0 when only logprobs: true). null: no logprobs.
   */
  logprobs: number | null;
  /** The request field a grammar came from (params.structuredOutput), for errors naming it. */
  grammarField: string | null;
  /** Chat with tools: how the reply is parsed into tool calls (null: plain text). */
  tools: ToolPlan | null;
}

/** Seed of choice `index`: the request's seed + index, so choice 0 reproduces a request with n = 1. */
export function seedOf(base: number, index: number): number {
  return (base + index) % SEED_SPACE;
}

/** A client seed as the engine's non-negative seed (negative seeds are valid in vLLM). */
export function normalizeSeed(seed: number): number {
  return ((seed % SEED_SPACE) + SEED_SPACE) % SEED_SPACE;
}

export function completionPlan(request: CompletionRequest, defaults: SamplingDefaults): GenerationPlan {
  refuseUnsupported(request);
  if (Array.isArray(request.tools) && request.tools.length > 0) throw badRequest('tools are for /v1/chat/completions', 'tools');
  const structured = structuredOutputOf(request);
  if (present(request.suffix) && request.suffix !== '') throw badRequest('suffix is not supported', 'suffix');
  const echo = request.echo ?? false;
  const maxTokens = request.max_tokens ?? null;
  if (maxTokens === 0 && !echo) throw badRequest('max_tokens must be at least 1 (0 is allowed only with echo, to score the prompt)', 'max_tokens');
  const logprobs = request.logprobs ?? null;
  return {
    kind: 'completion',
    prompts: completionPrompts(request.prompt),
    tokenizeOptions: { addSpecialTokens: request.add_special_tokens ?? true },
    n: request.n ?? 1,
    params: {
      ...engineSampling(request, defaults),
      ...(logprobs !== null ? { logprobs } : {}),
      ...(echo && logprobs !== null ? { promptLogprobs: logprobs } : {}),
      ...(structured ? { structuredOutput: structured.spec } : {}),
    },
    maxTokens,
    promptOnly: maxTokens === 0,
    seed: request.seed !== undefined && request.seed !== null ? normalizeSeed(request.seed) : null,
    ...streaming(request),
    echo,
    chatEchoText: null,
    logprobs,
    grammarField: structured?.field ?? null,
    tools: null,
  };
}

export function chatPlan(request: ChatRequest, defaults: SamplingDefaults, toolOptions: ToolCallOptions = NO_AUTO_TOOLS): GenerationPlan {
  refuseUnsupported(request);
  const tools = toolPlanOf(request, toolOptions);
  const structured = structuredOutputOf(request);
  if (structured && tools?.grammar) throw badRequest(`${structured.field} cannot be combined with tool_choice "required" or a named function: the call's own schema constrains the reply`, structured.field);
  const grammar = tools?.grammar ? { spec: tools.grammar, field: 'tools' } : structured;
  if (request.top_logprobs !== undefined && request.top_logprobs !== null && request.top_logprobs > 0 && !request.logprobs) {
    throw badRequest('when using `top_logprobs`, `logprobs` must be set to true', 'top_logprobs');
  }
  const messages = chatMessages(request.messages);
  if (request.continue_final_message) throw badRequest('continue_final_message is not supported yet', 'continue_final_message');
  const addGenerationPrompt = request.add_generation_prompt ?? true;
  const last = messages[messages.length - 1]!;
  const echo = request.echo ?? false;
  const logprobs = request.logprobs ? (request.top_logprobs ?? 0) : null;
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
  if (maxTokens === 0) throw badRequest('max_tokens must be at least 1', 'max_tokens');
  return {
    kind: 'chat',
    prompts: [{ kind: 'chat', messages }],
    tokenizeOptions: {
      addGenerationPrompt,
      addSpecialTokens: request.add_special_tokens ?? false,
      // the tools reach the template as `tools`, as with HF's apply_chat_template(tools=...)
      ...(request.chat_template_kwargs ? { templateKwargs: request.chat_template_kwargs } : {}),
      ...(tools ? { tools: tools.templateTools } : {}),
    },
    n: request.n ?? 1,
    params: {
      ...engineSampling(request, defaults),
      ...(logprobs !== null ? { logprobs } : {}),
      ...(grammar ? { structuredOutput: grammar.spec } : {}),
    },
    maxTokens,
    promptOnly: false,
    seed: request.seed !== undefined && request.seed !== null ? normalizeSeed(request.seed) : null,
    ...streaming(request),
    echo,
    // vLLM: with echo, the answer starts with the last message's text when that message is the assistant's
    chatEchoText: echo && last.role === 'assistant' ? contentString(last.content) : null,
    logprobs,
    grammarField: grammar?.field ?? null,
    tools,
  };
}

const NO_AUTO_TOOLS: ToolCallOptions = { enableAutoToolChoice: false, toolCallParser: null };

/** API chat messages as the tokenizer takes them: developer as system, tool calls' arguments as objects. */
export function chatMessages(messages: ChatRequest['messages']): ChatMessage[] {
  return messages.map((m) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    const base = { role, content: m.content, ...(m.name ? { name: m.name } : {}), ...(m.tool_call_id ? { tool_call_id: m.tool_call_id } : {}) };
    return (m.tool_calls?.length ? templateMessage({ ...base, tool_calls: m.tool_calls }) : base) as ChatMessage;
  });
}

/** The engine parameters of a choice: the plan's, its max tokens and its seed. */
export function choiceParams(plan: GenerationPlan, maxTokens: number, seed: number): GenerationParams {
  return { ...plan.params, maxTokens, seed };
}

function completionPrompts(prompt: CompletionRequest['prompt']): PromptInput[] {
  if (typeof prompt === 'string') return [{ kind: 'text', text: prompt }];
  if (prompt.length > 0 && typeof prompt[0] === 'number') return [{ kind: 'tokens', tokenIds: prompt as number[] }];
  return (prompt as (string | number[])[]).map((p): PromptInput => (typeof p === 'string' ? { kind: 'text', text: p } : { kind: 'tokens', tokenIds: p }));
}

type SamplingFields = Pick<CompletionRequest, 'temperature' | 'top_p' | 'top_k' | 'min_p' | 'presence_penalty' | 'frequency_penalty'
  | 'repetition_penalty' | 'logit_bias' | 'min_tokens' | 'stop' | 'stop_token_ids' | 'ignore_eos' | 'include_stop_str_in_output'
  | 'skip_special_tokens' | 'priority'>;

/** snake_case sampling fields -> the engine's camelCase ones; unset fields take the model's defaults. */
function engineSampling(r: SamplingFields, defaults: SamplingDefaults): GenerationPlan['params'] {
  const out: GenerationPlan['params'] = {};
  const set = <K extends keyof GenerationPlan['params']>(key: K, value: GenerationPlan['params'][K] | null | undefined) => {
    if (value !== undefined && value !== null) out[key] = value;
  };
  set('temperature', r.temperature ?? defaults.temperature);
  set('topP', r.top_p ?? defaults.topP);
  set('topK', r.top_k ?? defaults.topK);
  set('minP', r.min_p ?? defaults.minP);
  set('repetitionPenalty', r.repetition_penalty ?? defaults.repetitionPenalty);
  set('presencePenalty', r.presence_penalty);
  set('frequencyPenalty', r.frequency_penalty);
  if (r.logit_bias) set('logitBias', Object.fromEntries(Object.entries(r.logit_bias).map(([id, bias]) => [Number(id), bias])));
  set('minTokens', r.min_tokens);
  set('stop', r.stop);
  set('stopTokenIds', r.stop_token_ids);
  set('ignoreEos', r.ignore_eos);
  set('includeStopStrInOutput', r.include_stop_str_in_output);
  set('skipSpecialTokens', r.skip_special_tokens);
  set('priority', r.priority);
  return out;
}

function streaming(r: Pick<CompletionRequest, 'stream' | 'stream_options'>) {
  const stream = r.stream ?? false;
  if (!stream && r.stream_options) throw badRequest('stream_options can only be set when stream is true', 'stream_options');
  return {
    stream,
    includeUsage: r.stream_options?.include_usage ?? false,
    continuousUsage: (r.stream_options?.include_usage ?? false) && (r.stream_options?.continuous_usage_stats ?? false),
  };
}

const UNSUPPORTED: [field: string, message: string][] = [
  ['functions', 'functions (the deprecated function calling) are not supported; use tools'],
  ['function_call', 'function_call (the deprecated function calling) is not supported; use tool_choice'],
  ['prompt_logprobs', 'prompt_logprobs is not supported yet; use echo with logprobs on /v1/completions'],
  ['truncate_prompt_tokens', 'truncate_prompt_tokens is not supported: prompts are never truncated; shorten the prompt'],
];

/** Features we do not have are refused by name, never silently ignored. */
function refuseUnsupported(r: Record<string, unknown>): void {
  for (const [field, message] of UNSUPPORTED) {
    const value = r[field];
    if (!present(value)) continue;
    if (Array.isArray(value) && value.length === 0) continue; // "tools": [] asks for nothing
    throw badRequest(message, field);
  }
  const bestOf = r['best_of'];
  if (present(bestOf) && bestOf !== 1 && bestOf !== r['n']) throw badRequest('best_of is not supported', 'best_of');
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function contentString(content: ChatMessage['content']): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('\n');
}
