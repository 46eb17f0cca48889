// Bounds on request fields that reach past JSON's own types: integers that the
// engine narrows into 32-bit arrays, logit_bias (a sparse list handed to the
// sampler), and chat_template_kwargs (variables the chat template sees).
// Each is a zod schema whose error names the field, or the entry, at fault.
// Bounds that need the model (token ids < vocab size) are checked by the
// engine client (checkParams) before the request is admitted.
import { z } from 'zod';
import { MAX_TEMPLATE_KWARGS, templateKwargRefusal } from '../actors/tokenizer/chat-template.js';
import { MAX_LOGIT_BIAS_ENTRIES } from '../models/sampling.js';

export const INT32_MAX = 2 ** 31 - 1;
export const INT32_MIN = -(2 ** 31);

/** An integer in [lo, hi], both inclusive; hi defaults to what an Int32Array holds. */
export function intIn(lo: number, hi = INT32_MAX) {
  return z.number({ error: `must be an integer in [${lo}, ${hi}]` })
    .refine((v) => Number.isInteger(v) && v >= lo && v <= hi, { error: (issue) => `must be an integer in [${lo}, ${hi}], got ${JSON.stringify(issue.input)}` });
}

/**
 * Seeds: any integer JSON can carry exactly (vLLM takes int64; past 2^53 a
 * JSON number is no longer the integer the client wrote). The engine folds
 * it into [0, 2^52) (request-mapping.ts).
 */
export const seed = intIn(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

/** A token id as JSON may carry it; whether the vocabulary has it is the engine's check. */
export const tokenId = intIn(0);

/** OpenAI's logit_bias: at most 300 token ids (as strings), each with a bias in [-100, 100]. */
export const logitBias = z.record(z.string(), z.unknown()).superRefine((bias, ctx) => {
  const entries = Object.entries(bias);
  if (entries.length > MAX_LOGIT_BIAS_ENTRIES) {
    ctx.addIssue({ code: 'custom', message: `has ${entries.length} entries; at most ${MAX_LOGIT_BIAS_ENTRIES} are allowed` });
    return;
  }
  for (const [key, value] of entries) {
    if (!/^\d{1,10}$/.test(key) || Number(key) > INT32_MAX) {
      ctx.addIssue({ code: 'custom', path: [key], message: `key ${JSON.stringify(key)} is not a token id (a non-negative integer)` });
      return;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < -100 || value > 100) {
      ctx.addIssue({ code: 'custom', path: [key], message: `the bias of token ${key} must be a number in [-100, 100], got ${JSON.stringify(value)}` });
      return;
    }
  }
}).transform((bias) => bias as Record<string, number>);

/** vLLM's chat_template_kwargs: extra template variables, never one the server derives. */
export const chatTemplateKwargs = z.record(z.string(), z.unknown()).superRefine((kwargs, ctx) => {
  const keys = Object.keys(kwargs);
  if (keys.length > MAX_TEMPLATE_KWARGS) {
    ctx.addIssue({ code: 'custom', message: `has ${keys.length} entries; at most ${MAX_TEMPLATE_KWARGS} are allowed` });
    return;
  }
  for (const key of keys) {
    const refusal = templateKwargRefusal(key);
    if (refusal !== null) {
      ctx.addIssue({ code: 'custom', path: [key], message: refusal });
      return;
    }
  }
});
