// What a prompt may be, and the checks every prompt passes before it reaches
// the scheduler. Each check throws a PromptError that names the value at
// fault; nothing is ever truncated to make a prompt fit.
import { PromptError } from './errors.js';

export const CHAT_ROLES = ['system', 'user', 'assistant', 'tool', 'ipython'] as const;
type ChatRole = (typeof CHAT_ROLES)[number];

/** OpenAI's text content part; other kinds (images, audio) are refused. */
export interface TextPart {
  type: 'text';
  text: string;
}

export interface ChatMessage {
  role: ChatRole;
  content: string | TextPart[];
  name?: string;
  /** An assistant's tool calls, as the chat template renders them (arguments as objects). */
  tool_calls?: unknown[];
  /** A tool message: the call it answers. */
  tool_call_id?: string;
}

/** A completion prompt (text or token ids) or a conversation for the chat template. */
export type PromptInput =
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; tokenIds: number[] }
  | { kind: 'chat'; messages: ChatMessage[] };

/** Checks the shape of a prompt that came from outside (JSON); returns it typed. */
export function validatePromptInput(input: unknown): PromptInput {
  if (!isObject(input)) throw new PromptError('a prompt must be an object with kind "text", "tokens" or "chat"');
  switch (input['kind']) {
    case 'text': {
      const text = input['text'];
      if (typeof text !== 'string') throw new PromptError(`a text prompt must be a string, got ${typeName(text)}`);
      if (text.length === 0) throw new PromptError('the prompt is empty');
      return { kind: 'text', text };
    }
    case 'tokens': {
      const ids = input['tokenIds'];
      if (!Array.isArray(ids)) throw new PromptError(`a token prompt must be a list of token ids, got ${typeName(ids)}`);
      if (ids.length === 0) throw new PromptError('the prompt is empty (no token ids)');
      return { kind: 'tokens', tokenIds: ids as number[] };
    }
    case 'chat':
      return { kind: 'chat', messages: validateMessages(input['messages']) };
    default:
      throw new PromptError(`unknown prompt kind ${JSON.stringify(input['kind'])} (use "text", "tokens" or "chat")`);
  }
}

/** Every id an integer in [0, vocabSize). */
export function checkTokenIds(ids: readonly unknown[], vocabSize: number): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new PromptError(`token id ${JSON.stringify(id)} at position ${i} is out of range: token ids must be integers in [0, ${vocabSize})`);
    }
  }
}

/**
 * The prompt must fit the context: at most max_model_len tokens, and with
 * `maxTokens` (when the client set max_tokens) prompt + completion must too.
 */
export function checkPromptLength(promptLength: number, maxModelLen: number, maxTokens?: number): void {
  if (promptLength > maxModelLen) {
    throw new PromptError(`the prompt is ${promptLength} tokens long, more than the maximum model length of ${maxModelLen} tokens (--max-model-len); shorten the prompt`);
  }
  if (maxTokens !== undefined && promptLength + maxTokens > maxModelLen) {
    throw new PromptError(`this model's maximum context length is ${maxModelLen} tokens, but ${promptLength + maxTokens} were requested ` +
      `(${promptLength} in the prompt, ${maxTokens} for the completion); reduce the prompt or max_tokens`);
  }
}

function validateMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) throw new PromptError(`chat messages must be a list, got ${typeName(messages)}`);
  if (messages.length === 0) throw new PromptError('the conversation is empty (no messages)');
  return messages.map((m, i) => validateMessage(m, i));
}

function validateMessage(message: unknown, index: number): ChatMessage {
  const where = `messages[${index}]`;
  if (!isObject(message)) throw new PromptError(`${where} must be an object with a role and a content, got ${typeName(message)}`);
  const role = message['role'];
  if (typeof role !== 'string' || !(CHAT_ROLES as readonly string[]).includes(role)) {
    throw new PromptError(`${where}.role ${JSON.stringify(role)} is not one of ${CHAT_ROLES.join(', ')}`);
  }
  const content = message['content'];
  const out: ChatMessage = { role: role as ChatRole, content: validateContent(content, where) };
  const name = message['name'];
  if (name !== undefined) {
    if (typeof name !== 'string') throw new PromptError(`${where}.name must be a string, got ${typeName(name)}`);
    out.name = name;
  }
  const toolCalls = message['tool_calls'];
  if (toolCalls !== undefined) {
    if (!Array.isArray(toolCalls)) throw new PromptError(`${where}.tool_calls must be a list, got ${typeName(toolCalls)}`);
    out.tool_calls = toolCalls;
  }
  const toolCallId = message['tool_call_id'];
  if (toolCallId !== undefined) {
    if (typeof toolCallId !== 'string') throw new PromptError(`${where}.tool_call_id must be a string, got ${typeName(toolCallId)}`);
    out.tool_call_id = toolCallId;
  }
  return out;
}

function validateContent(content: unknown, where: string): string | TextPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw new PromptError(`${where}.content must be a string or a list of text parts, got ${typeName(content)}`);
  return content.map((part, j) => {
    if (!isObject(part) || part['type'] !== 'text') {
      const kind = isObject(part) ? JSON.stringify(part['type']) : typeName(part);
      throw new PromptError(`${where}.content[${j}] is of type ${kind}: only text parts ({"type": "text", "text": ...}) are supported`);
    }
    if (typeof part['text'] !== 'string') throw new PromptError(`${where}.content[${j}].text must be a string, got ${typeName(part['text'])}`);
    return { type: 'text', text: part['text'] };
  });
}

/** Text parts joined by newlines, as vLLM does for templates that take string content. */
export function contentText(content: string | readonly TextPart[]): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('\n');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`;
}
