// Tool calling for Llama 3.x, as vLLM serves it with
// `--enable-auto-tool-choice --tool-call-parser llama3_json`. Plain
// functions, no I/O:
//
//   request:  tools [{type: "function", function: {name, description, parameters}}],
//             tool_choice "none" | "auto" | "required" | {type: "function", function: {name}},
//             parallel_tool_calls
//   prompt:   the tools go to the model's chat template as `tools` (Llama 3.1's
//             renders them with its JSON call format: {"name": ..., "parameters": {...}})
//   decoding: "required" and a named function are enforced by a grammar: the
//             JSON schema {"name": const, "parameters": <the function's schema>}
//             (anyOf over the tools for "required"; with parallel_tool_calls, a
//             JSON array of at least one such call, as vLLM's), so the reply
//             always parses; "auto" lets the model choose, and the reply is
//             parsed if it is a call
//   reply:    the text (after an optional <|python_tag|>) is one JSON call, or
//             several separated by ";" -> message.tool_calls [{id: "chatcmpl-tool-<random>",
//             type: "function", function: {name, arguments: "<JSON text>"}}],
//             content null, finish_reason "tool_calls"
import { randomBytes } from 'node:crypto';
import type { GrammarSpec } from '../actors/grammar/grammar-spec.js';
import { badRequest } from './errors.js';

/** --enable-auto-tool-choice / --tool-call-parser. */
export interface ToolCallOptions {
  enableAutoToolChoice: boolean;
  /** The only parser Troupe has is llama3_json. */
  toolCallParser: 'llama3_json' | null;
}

export const TOOL_CALL_PARSERS = ['llama3_json'] as const;

export interface ToolFunction {
  name: string;
  description?: string;
  parameters: Record<string, unknown> | boolean;
}

export interface ToolPlan {
  /** The tools as the chat template gets them (the request's objects). */
  templateTools: Record<string, unknown>[];
  functions: ToolFunction[];
  choice: 'auto' | 'required' | { name: string };
  /** parallel_tool_calls (default true): an "auto" reply may hold several calls, a "required" one is an array of them. */
  parallel: boolean;
  /** The grammar that enforces the call ("required", named), else null. */
  grammar: GrammarSpec | null;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The request's tool plan (null: no tools, or tool_choice "none"); throws a 400 naming the field at fault. */
export function toolPlanOf(request: Record<string, unknown>, options: ToolCallOptions): ToolPlan | null {
  const tools = request['tools'];
  const toolChoice = request['tool_choice'];
  const hasTools = Array.isArray(tools) && tools.length > 0;
  if (tools !== undefined && tools !== null && !Array.isArray(tools)) throw badRequest('tools must be a list of {"type": "function", "function": {...}}', 'tools');
  if (!hasTools) {
    if (present(toolChoice) && toolChoice !== 'none' && toolChoice !== 'auto') throw badRequest('tool_choice needs tools: the request has none', 'tool_choice');
    return null;
  }
  const functions = (tools as unknown[]).map((t, i) => toolFunction(t, i));
  const names = new Set<string>();
  for (const [i, f] of functions.entries()) {
    if (names.has(f.name)) throw badRequest(`tools[${i}].function.name "${f.name}" is given twice`, `tools[${i}].function.name`);
    names.add(f.name);
  }
  const parallel = request['parallel_tool_calls'] !== false;
  const choice = parseChoice(toolChoice ?? 'auto', names);
  if (choice === 'none') return null;
  if (choice === 'auto' && !(options.enableAutoToolChoice && options.toolCallParser)) {
    throw badRequest('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', 'tool_choice');
  }
  const grammar = choice === 'auto'
    ? null
    : choice === 'required'
      ? callGrammar(functions, parallel)
      : callGrammar(functions.filter((f) => f.name === choice.name));
  return { templateTools: tools as Record<string, unknown>[], functions, choice, parallel, grammar };
}

function toolFunction(tool: unknown, i: number): ToolFunction {
  const where = `tools[${i}]`;
  if (!isObject(tool) || tool['type'] !== 'function' || !isObject(tool['function'])) throw badRequest(`${where} must be {"type": "function", "function": {"name": ..., "parameters": {...}}}`, where);
  const f = tool['function'];
  if (typeof f['name'] !== 'string' || !NAME.test(f['name'])) throw badRequest(`${where}.function.name must be a-z, A-Z, 0-9, underscores and dashes, at most 64 characters`, `${where}.function.name`);
  if (present(f['description']) && typeof f['description'] !== 'string') throw badRequest(`${where}.function.description must be a string`, `${where}.function.description`);
  const parameters = present(f['parameters']) ? f['parameters'] : { type: 'object', properties: {} };
  if (typeof parameters !== 'boolean' && !isObject(parameters)) throw badRequest(`${where}.function.parameters must be a JSON schema (an object)`, `${where}.function.parameters`);
  return { name: f['name'], ...(typeof f['description'] === 'string' ? { description: f['description'] } : {}), parameters: parameters as ToolFunction['parameters'] };
}

function parseChoice(value: unknown, names: Set<string>): 'none' | 'auto' | 'required' | { name: string } {
  if (value === 'none' || value === 'auto' || value === 'required') return value;
  if (isObject(value) && value['type'] === 'function' && isObject(value['function']) && typeof value['function']['name'] === 'string') {
    const name = value['function']['name'];
    if (!names.has(name)) throw badRequest(`tool_choice names the function "${name}", which is not among the tools (${[...names].join(', ')})`, 'tool_choice');
    return { name };
  }
  throw badRequest('tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}', 'tool_choice');
}

/**
 * The JSON schema of one call in Llama 3.1's format, over these functions;
 * with `many` (tool_choice "required", parallel_tool_calls true) a JSON array
 * of at least one such call, as vLLM's grammar for "required".
 */
export function callGrammar(functions: ToolFunction[], many = false): GrammarSpec {
  const one = (f: ToolFunction) => ({
    type: 'object',
    properties: { name: { const: f.name }, parameters: f.parameters },
    required: ['name', 'parameters'],
    additionalProperties: false,
  });
  const call = functions.length === 1 ? one(functions[0]!) : { anyOf: functions.map(one) };
  return { type: 'json_schema', schema: many ? { type: 'array', items: call, minItems: 1 } : call };
}

export function newToolCallId(): string {
  return `chatcmpl-tool-${randomBytes(16).toString('hex')}`;
}

/**
 * The calls in a reply, or null when it is not (only) calls. llama3_json:
 * an optional <|python_tag|>, then JSON objects {"name": ..., "parameters"
 * (or "arguments"): {...}} separated by ";", or a JSON array of them (the
 * "required" grammar with parallel calls). `parallel` false keeps the first.
 * `truncated`: the reply was cut off (max_tokens) inside an array of calls:
 * the calls it completed are kept, the one it was writing dropped.
 */
export function parseToolCalls(text: string, plan: Pick<ToolPlan, 'functions' | 'parallel'>, truncated = false): ToolCall[] | null {
  let rest = text.trim();
  if (rest.startsWith('<|python_tag|>')) rest = rest.slice('<|python_tag|>'.length).trim();
  const known = new Set(plan.functions.map((f) => f.name));
  const array = rest.startsWith('[');
  if (array) rest = rest.slice(1).trim();
  else if (truncated || !rest.startsWith('{')) return null;
  const calls: ToolCall[] = [];
  while (rest.length > 0) {
    const end = jsonObjectEnd(rest);
    if (end < 0) {
      if (truncated) break;
      return null;
    }
    const call = callOf(rest.slice(0, end), known);
    if (!call) return null;
    calls.push(call);
    rest = rest.slice(end).trim();
    const separator = array ? ',' : ';';
    if (rest.startsWith(separator)) rest = rest.slice(1).trim();
    else if (array && rest === ']') rest = '';
    else if (rest.length > 0 || (array && !truncated)) return null;
  }
  return calls.length === 0 ? null : plan.parallel ? calls : calls.slice(0, 1);
}

/** One call's JSON text {"name": <a known function>, "parameters" (or "arguments"): {...}} as a ToolCall, or null. */
function callOf(json: string, known: Set<string>): ToolCall | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value['name'] !== 'string' || !known.has(value['name'])) return null;
  const args = value['parameters'] ?? value['arguments'] ?? {};
  if (!isObject(args)) return null;
  return { id: newToolCallId(), type: 'function', function: { name: value['name'], arguments: JSON.stringify(args) } };
}

/** Where the JSON object at the start of `s` ends (one past its closing brace), or -1. */
export function jsonObjectEnd(s: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

/** The chunks that stream a choice's calls the way OpenAI does: per call, its id and name, then its arguments. */
export function toolCallDeltas(calls: ToolCall[]): Record<string, unknown>[] {
  return calls.flatMap((call, index) => [
    { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] },
    { tool_calls: [{ index, function: { arguments: call.function.arguments } }] },
  ]);
}

/**
 * An assistant message of a conversation as a chat template expects it:
 * tool_calls' arguments as objects (HF templates, Llama 3.1's among them,
 * render them with tojson), content "" where it was null.
 */
export function templateMessage(message: { role: string; content: unknown; tool_calls?: unknown; tool_call_id?: unknown }): Record<string, unknown> {
  const out: Record<string, unknown> = { ...message, content: message.content ?? '' };
  if (Array.isArray(message.tool_calls)) {
    out['tool_calls'] = message.tool_calls.map((call) => {
      if (!isObject(call) || !isObject(call['function'])) return call;
      const args = call['function']['arguments'];
      let parsed: unknown = args;
      if (typeof args === 'string') {
        try {
          parsed = JSON.parse(args);
        } catch {
          parsed = args;
        }
      }
      return { ...call, function: { ...call['function'], arguments: parsed } };
    });
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}
