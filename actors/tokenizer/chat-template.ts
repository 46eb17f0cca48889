// Chat templates: the Jinja template in tokenizer_config.json (or given with
// --chat-template), rendered with @huggingface/jinja the way HF's
// apply_chat_template renders it: messages, add_generation_prompt, tools and
// documents (none), the special tokens (bos_token, eos_token, ...), and the
// helpers raise_exception and strftime_now. `date_string` is not passed unless
// the caller passes it (chat template kwargs): Llama 3.1's template then falls
// back to "26 Jul 2024", exactly as with HF and vLLM; Llama 3.2's uses
// strftime_now for today's date.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { ChatTemplateError } from './errors.js';

export const NO_CHAT_TEMPLATE_MESSAGE = 'this model has no chat template; pass --chat-template';

/**
 * Template variables the server derives from the request or the model; a
 * caller's template kwargs may add variables but never replace these, so the
 * validated messages (and their limits) are what the template renders.
 */
const DERIVED_VARIABLES: Record<string, string> = {
  messages: 'the request\'s messages',
  add_generation_prompt: 'the request\'s add_generation_prompt',
  continue_final_message: 'the request\'s continue_final_message',
  tools: 'the request\'s tools',
  documents: 'the request\'s documents',
  chat_template: 'the server\'s chat template',
  tokenize: 'the server',
  return_dict: 'the server',
  raise_exception: 'the server (a template helper)',
  strftime_now: 'the server (a template helper)',
  range: 'the server (a template helper)',
};
const CONSTANTS = new Set(['true', 'false', 'none', 'True', 'False', 'None']);
/** HF's special-token variables (the server passes the model's own). */
const SPECIAL_TOKENS = new Set(['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token', 'additional_special_tokens']);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Template kwargs a request may pass (each is one template variable). */
export const MAX_TEMPLATE_KWARGS = 64;

/** Why `key` cannot be a template kwarg, or null when it can. */
export function templateKwargRefusal(key: string): string | null {
  if (!IDENTIFIER.test(key)) return `${JSON.stringify(key)} is not a template variable name (letters, digits and _, not starting with a digit)`;
  if (key.startsWith('__')) return `${key}: names starting with __ are reserved`;
  if (Object.hasOwn(DERIVED_VARIABLES, key)) return `${key} is set by ${DERIVED_VARIABLES[key]} and cannot be passed in chat_template_kwargs`;
  if (CONSTANTS.has(key)) return `${key} is a template constant and cannot be passed in chat_template_kwargs`;
  if (SPECIAL_TOKENS.has(key)) return `${key} names a special token, which the server takes from the model, and cannot be passed in chat_template_kwargs`;
  return null;
}

/** Throws a ChatTemplateError naming the first kwarg the template may not take. */
function checkTemplateKwargs(kwargs: Record<string, unknown>): void {
  const keys = Object.keys(kwargs);
  if (keys.length > MAX_TEMPLATE_KWARGS) throw new ChatTemplateError(`chat_template_kwargs has ${keys.length} entries; at most ${MAX_TEMPLATE_KWARGS} are allowed`);
  for (const key of keys) {
    const refusal = templateKwargRefusal(key);
    if (refusal !== null) throw new ChatTemplateError(`chat_template_kwargs.${key}: ${refusal}`);
  }
}

/**
 * `--chat-template VALUE`, as vLLM reads it: the path of a file holding the
 * template, or else the template itself when it looks like one (has a brace
 * or a newline).
 */
export function resolveChatTemplateOption(value: string): string {
  if (existsSync(value) && statSync(value).isFile()) return readFileSync(value, 'utf8');
  if (/[{}\n]/.test(value)) return value;
  throw new ChatTemplateError(`--chat-template ${JSON.stringify(value)}: no such file, and it does not look like a Jinja template`);
}

/** The template of a tokenizer_config.json: a string, or HF's list of named templates (the "default" one). */
export function chatTemplateFromConfig(config: Record<string, unknown>): string | null {
  const value = config['chat_template'];
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    if (chosen && typeof chosen.template === 'string') return chosen.template;
  }
  return null;
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string) {
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new ChatTemplateError(`the chat template does not parse: ${(error as Error).message}`);
    }
  }

  /**
   * Renders with HF's variables: the model's `specialTokens` (bos_token, ...)
   * and the caller's `kwargs`, which may add variables but not replace any
   * the server derives (checkTemplateKwargs); `tools`: the request's tools
   * (the template's `tools`, null without any).
   */
  render(messages: readonly Record<string, unknown>[], addGenerationPrompt: boolean, specialTokens: Record<string, string> = {}, kwargs: Record<string, unknown> = {}, tools: Record<string, unknown>[] | null = null): string {
    checkTemplateKwargs(kwargs);
    const env = new Environment();
    // Template.render() would install the library's own raise_exception and
    // strftime_now (the latter with locale-dependent month names), and a
    // variable cannot be declared twice, so the globals are set up here.
    const globals: Record<string, unknown> = {
      ...kwargs,
      true: true, false: false, none: null, True: true, False: false, None: null,
      range: pythonRange,
      raise_exception: raiseException,
      strftime_now: (format: string) => strftime(format, new Date()),
      messages,
      add_generation_prompt: addGenerationPrompt,
      tools,
      documents: null,
      ...specialTokens,
    };
    try {
      for (const [key, value] of Object.entries(globals)) env.set(key, value);
      return new Interpreter(env).run(this.template.parsed).value as string;
    } catch (error) {
      if (error instanceof ChatTemplateError) throw error;
      throw new ChatTemplateError(`the chat template failed to render: ${(error as Error).message}`);
    }
  }
}

/** Python's range(stop) / range(start, stop[, step]). */
function pythonRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ChatTemplateError('range() step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

function raiseException(message: unknown): never {
  throw new ChatTemplateError(`the chat template refused the conversation: ${String(message)}`);
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Python's datetime.strftime for the directives chat templates use (local time, C locale). */
export function strftime(format: string, date: Date): string {
  return format.replace(/%([a-zA-Z%])/g, (whole, directive: string) => {
    switch (directive) {
      case 'd': return pad(date.getDate());
      case 'e': return String(date.getDate()).padStart(2, ' ');
      case 'm': return pad(date.getMonth() + 1);
      case 'b': return MONTHS[date.getMonth()]!.slice(0, 3);
      case 'B': return MONTHS[date.getMonth()]!;
      case 'y': return pad(date.getFullYear() % 100);
      case 'Y': return String(date.getFullYear());
      case 'a': return DAYS[date.getDay()]!.slice(0, 3);
      case 'A': return DAYS[date.getDay()]!;
      case 'H': return pad(date.getHours());
      case 'I': return pad(((date.getHours() + 11) % 12) + 1);
      case 'p': return date.getHours() < 12 ? 'AM' : 'PM';
      case 'M': return pad(date.getMinutes());
      case 'S': return pad(date.getSeconds());
      case 'j': return pad(dayOfYear(date), 3);
      case '%': return '%';
      default: return whole;
    }
  });
}

function dayOfYear(date: Date): number {
  const start = new Date(date.getFullYear(), 0, 1);
  return Math.round((new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - start.getTime()) / 86_400_000) + 1;
}
