// Request bodies the gateway accepts, as zod schemas: OpenAI's fields plus
// vLLM's extra sampling fields, with vLLM's names. Every field may be null
// (clients send null for "not set"); unknown fields are dropped, as vLLM
// ignores them, except the features we do not have yet, which are refused
// by name in request-mapping.ts rather than silently ignored.
//
// Ranges here mirror the engine's own checks (request-params.ts,
// models/sampling.ts) so a bad value is a 400 naming the field before any
// work is done; every integer is bounded before the engine narrows it into a
// 32-bit array (input-limits.ts); bounds that need the model (token ids <
// vocab size, prompt length) are checked later, by the tokenizer and the engine.
import { z } from 'zod';
import { CHAT_ROLES } from '../actors/tokenizer/prompt.js';
import { MAX_N } from '../actors/engine/request-params.js';
import { MAX_LOGPROBS } from '../models/sampling.js';
import { badRequest } from './errors.js';
import { chatTemplateKwargs, INT32_MAX, INT32_MIN, intIn, logitBias, seed, tokenId } from './input-limits.js';

const optional = <T extends z.ZodType>(schema: T) => schema.nullish();

/** Text with no unpaired UTF-16 surrogate (JSON's "\ud800" makes one; no generated text can contain it). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const stopString = z.string().min(1).refine((s) => !LONE_SURROGATE.test(s), { error: 'stop strings must be well-formed text (an unpaired \\uD800-\\uDFFF escape is not)' });
const stop = z.union([stopString, z.array(stopString).max(64)], {
  error: 'stop must be a non-empty string or a list of non-empty strings of well-formed text',
});

const streamOptions = z.object({
  include_usage: optional(z.boolean()),
  continuous_usage_stats: optional(z.boolean()),
});

/** Fields shared by /v1/completions and /v1/chat/completions. */
const sampling = {
  model: optional(z.string()),
  n: optional(intIn(1, MAX_N)),
  max_tokens: optional(intIn(0)),
  stream: optional(z.boolean()),
  stream_options: optional(streamOptions),
  seed: optional(seed),
  stop: optional(stop),
  temperature: optional(z.number().min(0)),
  top_p: optional(z.number().gt(0).max(1)),
  presence_penalty: optional(z.number().min(-2).max(2)),
  frequency_penalty: optional(z.number().min(-2).max(2)),
  logit_bias: optional(logitBias),
  user: optional(z.string()),
  // vLLM's extra sampling parameters
  top_k: optional(intIn(-1)),
  min_p: optional(z.number().min(0).max(1)),
  repetition_penalty: optional(z.number().gt(0)),
  ignore_eos: optional(z.boolean()),
  min_tokens: optional(intIn(0)),
  stop_token_ids: optional(z.array(tokenId).max(1024)),
  skip_special_tokens: optional(z.boolean()),
  include_stop_str_in_output: optional(z.boolean()),
  priority: optional(intIn(INT32_MIN, INT32_MAX)),
  // structured output and tools: checked by structured-output.ts and tool-calls.ts (errors name the field)
  response_format: optional(z.unknown()),
  tools: optional(z.unknown()),
  tool_choice: optional(z.unknown()),
  guided_json: optional(z.unknown()),
  guided_regex: optional(z.unknown()),
  guided_choice: optional(z.unknown()),
  guided_grammar: optional(z.unknown()),
  structured_outputs: optional(z.unknown()),
  // not supported yet: refused by name (request-mapping.ts)
  functions: optional(z.unknown()),
  function_call: optional(z.unknown()),
  prompt_logprobs: optional(intIn(-1, MAX_LOGPROBS)),
  best_of: optional(intIn(1, MAX_N)),
  truncate_prompt_tokens: optional(intIn(-1)),
  suffix: optional(z.unknown()),
};

export const completionRequestSchema = z.object({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1).max(1024),
    z.array(tokenId).min(1),
    z.array(z.array(tokenId).min(1)).min(1).max(1024),
  ], { error: 'prompt must be a string, a list of strings, a list of token ids or a list of lists of token ids' }),
  echo: optional(z.boolean()),
  logprobs: optional(intIn(0, MAX_LOGPROBS)),
  add_special_tokens: optional(z.boolean()),
});

const textPart = z.object({
  type: z.literal('text', { error: 'only text content parts ({"type": "text", "text": ...}) are supported' }),
  text: z.string(),
});

/**
 * A chat message. Content parts are checked after the union, one by one, so
 * the error names the part at fault (inside a union zod would only say the
 * content is invalid).
 */
const toolCall = z.object({
  id: z.string(),
  type: z.literal('function', { error: 'a tool call\'s type must be "function"' }),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

/** OpenAI's developer role is the system role of these models' templates. */
const CHAT_API_ROLES = [...CHAT_ROLES, 'developer'] as const;

const chatMessage = z.object({
  role: z.enum(CHAT_API_ROLES, { error: `role must be one of ${CHAT_API_ROLES.join(', ')}` }),
  // null: an assistant message that only calls tools
  content: z.union([z.string(), z.array(z.unknown()).max(1024), z.null()], { error: 'content must be a string or a list of text parts' }),
  name: optional(z.string()),
  tool_calls: optional(z.array(toolCall).max(128)),
  tool_call_id: optional(z.string()),
}).transform((message, ctx) => {
  if (message.content === null && !(message.role === 'assistant' && message.tool_calls?.length)) {
    ctx.addIssue({ code: 'custom', message: 'content may be null only in an assistant message with tool_calls', path: ['content'] });
    return z.NEVER;
  }
  if (message.role === 'tool' && !message.tool_call_id) {
    ctx.addIssue({ code: 'custom', message: 'a tool message needs the tool_call_id of the call it answers', path: ['tool_call_id'] });
    return z.NEVER;
  }
  if (typeof message.content === 'string' || message.content === null) return { ...message, content: message.content ?? '' };
  const parts: z.infer<typeof textPart>[] = [];
  for (let i = 0; i < message.content.length; i++) {
    const result = textPart.safeParse(message.content[i]);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      ctx.addIssue({ code: 'custom', message: issue.message, path: ['content', i, ...issue.path] });
      return z.NEVER;
    }
    parts.push(result.data);
  }
  return { ...message, content: parts };
});

export const chatRequestSchema = z.object({
  ...sampling,
  messages: z.array(chatMessage).min(1).max(4096),
  max_completion_tokens: optional(intIn(1)),
  logprobs: optional(z.boolean()),
  top_logprobs: optional(intIn(0, MAX_LOGPROBS)),
  echo: optional(z.boolean()),
  add_generation_prompt: optional(z.boolean()),
  continue_final_message: optional(z.boolean()),
  add_special_tokens: optional(z.boolean()),
  chat_template_kwargs: optional(chatTemplateKwargs),
  parallel_tool_calls: optional(z.boolean()),
});

export const tokenizeRequestSchema = z.union([
  z.object({
    model: optional(z.string()),
    prompt: z.string(),
    add_special_tokens: optional(z.boolean()),
    return_token_strs: optional(z.boolean()),
  }),
  z.object({
    model: optional(z.string()),
    messages: z.array(chatMessage).min(1).max(4096),
    add_generation_prompt: optional(z.boolean()),
    continue_final_message: optional(z.boolean()),
    add_special_tokens: optional(z.boolean()),
    chat_template_kwargs: optional(chatTemplateKwargs),
    return_token_strs: optional(z.boolean()),
  }),
], { error: 'a tokenize request needs either "prompt" (a string) or "messages" (a list of chat messages)' });

export const detokenizeRequestSchema = z.object({
  model: optional(z.string()),
  tokens: z.array(tokenId).max(1 << 20),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** Parses `body` or throws a 400 naming the first field at fault (param: its dotted path). */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  throw badRequest(param ? `${param}: ${issue.message}` : issue.message, param);
}
