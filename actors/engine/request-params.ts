// What a caller may ask of one generation (vLLM's SamplingParams, camelCased),
// validated with errors that name the field. The sampler's share is checked
// by models/sampling.ts; this adds the engine's (lengths, stops, n).
import { InvalidSamplingParamError, validateSamplingParams, type SamplingParams } from '../../models/sampling.js';
import { checkStopStrings } from '../detokenizer/stop-strings.js';
import { GrammarSpecError, validateGrammarSpec, type GrammarSpec } from '../grammar/grammar-spec.js';

export interface GenerationParams extends SamplingParams {
  /** Completions per prompt. */
  n?: number;
  /** Default 16, like vLLM's SamplingParams. */
  maxTokens?: number;
  minTokens?: number;
  stop?: string | string[];
  stopTokenIds?: number[];
  ignoreEos?: boolean;
  includeStopStrInOutput?: boolean;
  skipSpecialTokens?: boolean;
  /** Top-n log-probabilities of each prompt token (0: just the token's own). */
  promptLogprobs?: number;
  /** Lower runs first under the priority policy. */
  priority?: number;
  /** What the output must match, enforced while decoding (actors/grammar/). */
  structuredOutput?: GrammarSpec;
}

export const DEFAULT_MAX_TOKENS = 16;
export const MAX_N = 16;

const KNOWN = new Set([
  'temperature', 'topK', 'topP', 'minP', 'presencePenalty', 'frequencyPenalty', 'repetitionPenalty', 'logitBias', 'logprobs', 'seed',
  'n', 'maxTokens', 'minTokens', 'stop', 'stopTokenIds', 'ignoreEos', 'includeStopStrInOutput', 'skipSpecialTokens', 'promptLogprobs', 'priority', 'structuredOutput',
]);

export class InvalidParamsError extends RangeError {
  override name = 'InvalidParamsError';
  /** The parameter at fault (camelCase); the message starts with it. */
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** Throws InvalidParamsError naming the first bad field. */
export function validateGenerationParams(p: GenerationParams, vocabSize: number): void {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new InvalidParamsError(field, `${field} must be ${want}, got ${JSON.stringify(got)}`);
  };
  if (typeof p !== 'object' || p === null) fail('params', 'an object', p);
  for (const key of Object.keys(p)) if (!KNOWN.has(key)) fail(key, `one of the supported parameters (${[...KNOWN].join(', ')})`, key);
  const intIn = (field: keyof GenerationParams, lo: number, hi = Number.MAX_SAFE_INTEGER) => {
    const v = p[field];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi)) fail(field, `an integer in [${lo}, ${hi}]`, v);
  };
  intIn('n', 1, MAX_N);
  intIn('maxTokens', 1);
  intIn('minTokens', 0);
  intIn('promptLogprobs', 0, 20);
  if (p.maxTokens !== undefined && p.minTokens !== undefined && p.minTokens > p.maxTokens) fail('minTokens', `at most maxTokens (${p.maxTokens})`, p.minTokens);
  if (p.priority !== undefined && !Number.isInteger(p.priority)) fail('priority', 'an integer', p.priority);
  const stops = p.stop === undefined ? [] : Array.isArray(p.stop) ? p.stop : [p.stop];
  if (stops.some((s) => typeof s !== 'string' || s.length === 0)) fail('stop', 'a non-empty string or a list of them', p.stop);
  try {
    checkStopStrings(stops); // what the detokenizer will accept (e.g. no unpaired surrogates)
  } catch (error) {
    throw new InvalidParamsError('stop', (error as Error).message);
  }
  if (p.stopTokenIds !== undefined && !(Array.isArray(p.stopTokenIds) && p.stopTokenIds.every((t) => Number.isInteger(t) && t >= 0 && t < vocabSize))) {
    fail('stopTokenIds', `a list of token ids in [0, ${vocabSize})`, p.stopTokenIds);
  }
  for (const flag of ['ignoreEos', 'includeStopStrInOutput', 'skipSpecialTokens'] as const) {
    if (p[flag] !== undefined && typeof p[flag] !== 'boolean') fail(flag, 'true or false', p[flag]);
  }
  if (p.structuredOutput !== undefined) {
    try {
      validateGrammarSpec(p.structuredOutput, 'structuredOutput');
    } catch (error) {
      if (!(error instanceof GrammarSpecError)) throw error;
      throw new InvalidParamsError(error.field, error.message);
    }
  }
  try {
    validateSamplingParams(p, vocabSize);
  } catch (error) {
    if (!(error instanceof InvalidSamplingParamError)) throw error;
    throw new InvalidParamsError(error.field, error.detail);
  }
}

export function stopStrings(p: GenerationParams): string[] {
  return p.stop === undefined ? [] : Array.isArray(p.stop) ? p.stop : [p.stop];
}
