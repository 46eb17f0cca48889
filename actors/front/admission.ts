// A submit becomes the records of its choices, or an EngineError: the one
// place a request is validated, tokenized and its grammar compiled
// (protocol.ts). No I/O of its own: the tokenizer and the grammar compiler
// are functions handed in.
//
//   params --validate--> prompt --tokenize--> ids --context check--> max tokens
//          --compile structuredOutput (if any)--> --seed--> one (id, params, seed) per choice
import { resolveSeed } from '../../models/sampling.js';
import { DEFAULT_MAX_TOKENS, InvalidParamsError, validateGenerationParams, type GenerationParams } from '../engine/request-params.js';
import { GrammarSpecError, type GrammarSpec } from '../grammar/grammar-spec.js';
import type { TokenizeReply } from '../tokenizer/messages.js';
import type { PromptInput } from '../tokenizer/prompt.js';
import { choiceIds, type EngineError, type SubmitRequest } from './protocol.js';

/** Seeds stay below 2^52 (what resolveSeed draws from), choice offsets included. */
const SEED_SPACE = 2 ** 52;

export interface AdmissionLimits {
  vocabSize: number;
  maxModelLen: number;
}

interface AdmittedChoice {
  id: string;
  params: GenerationParams;
  seed: number;
}

export interface Admitted {
  promptTokenIds: number[];
  promptText: string | null;
  maxTokens: number;
  choices: AdmittedChoice[];
}

export type Tokenize = (prompt: PromptInput, options: SubmitRequest['tokenize']) => Promise<TokenizeReply>;

/**
 * Compiles a request's grammar (or finds it cached), so the scheduler's
 * matchers never meet a bad one; a bad spec throws GrammarSpecError naming `field`.
 */
export type CompileGrammar = (spec: GrammarSpec, field: string) => Promise<void>;

export async function admit(request: Omit<SubmitRequest, 'client'>, limits: AdmissionLimits, tokenize: Tokenize, compileGrammar?: CompileGrammar): Promise<Admitted | EngineError> {
  const { params } = request;
  try {
    validateGenerationParams(params, limits.vocabSize);
  } catch (error) {
    if (error instanceof InvalidParamsError) return { code: 'invalid_params', field: error.field, message: error.message };
    throw error;
  }
  const reply = await tokenize(request.prompt, request.tokenize);
  if (!reply.ok) {
    const { name, message, promptLength } = reply.error;
    if (promptLength !== undefined) return { code: 'context_length', field: 'prompt', message, promptLength, maxModelLen: limits.maxModelLen };
    if (name === 'PromptError') return { code: 'invalid_prompt', field: 'prompt', message };
    if (name === 'ChatTemplateError') return { code: 'chat_template', field: 'messages', message };
    return { code: 'internal', field: null, message: `tokenizer: ${message}` };
  }
  const promptLength = reply.promptTokenIds.length;
  const maxTokens = resolveMaxTokens(params, request.maxTokensDefault, promptLength, limits.maxModelLen);
  if (typeof maxTokens !== 'number') return maxTokens;
  if (params.structuredOutput !== undefined) {
    const refused = await checkGrammar(params.structuredOutput, compileGrammar);
    if (refused) return refused;
  }
  const n = params.n ?? 1;
  const base = resolveSeed(params);
  const { n: _n, ...perChoice } = params;
  const choices = choiceIds(request.requestId, n).map((id, i) => ({ id, params: { ...perChoice, maxTokens }, seed: (base + i) % SEED_SPACE }));
  return { promptTokenIds: reply.promptTokenIds, promptText: reply.prompt, maxTokens, choices };
}

/** Compiles the request's grammar: a refusal is an invalid_grammar error naming structuredOutput. */
async function checkGrammar(spec: GrammarSpec, compileGrammar: CompileGrammar | undefined): Promise<EngineError | undefined> {
  const field = 'structuredOutput';
  if (!compileGrammar) return { code: 'internal', field: null, message: 'this engine front has no grammar compiler; structuredOutput cannot be served' };
  try {
    await compileGrammar(spec, field);
    return undefined;
  } catch (error) {
    if (error instanceof GrammarSpecError) return { code: 'invalid_grammar', field: error.field, message: error.message };
    throw error;
  }
}

/**
 * The choices' max tokens: the request's, else the default (a number, or the
 * rest of the context). Prompt plus max tokens must fit max_model_len; with
 * no max tokens asked for, prompt plus one (generation stops at the context's end).
 */
function resolveMaxTokens(params: GenerationParams, fallback: SubmitRequest['maxTokensDefault'], promptLength: number, maxModelLen: number): number | EngineError {
  const tooLong = (asked: number, field: string, message: string): EngineError => ({
    code: 'context_length', field, promptLength, maxModelLen,
    message: `${message} (${promptLength} tokens in the prompt${asked > 0 ? `, ${asked} for the completion` : ''}, max_model_len ${maxModelLen})`,
  });
  if (params.maxTokens !== undefined) {
    if (promptLength + params.maxTokens > maxModelLen) return tooLong(params.maxTokens, 'maxTokens', 'the prompt and max tokens do not fit the context; reduce the prompt or max tokens');
    return params.maxTokens;
  }
  if (promptLength >= maxModelLen) return tooLong(0, 'prompt', 'the prompt leaves no room in the context for a token to generate; shorten the prompt or raise --max-model-len');
  if (fallback === 'context') return maxModelLen - promptLength;
  return Math.min(fallback ?? DEFAULT_MAX_TOKENS, maxModelLen - promptLength);
}
