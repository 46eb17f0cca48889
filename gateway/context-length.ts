// How many tokens a choice may generate, and vLLM's refusal when the prompt
// plus that does not fit the context (clients and tools match its wording):
//
//   This model's maximum context length is 2048 tokens. However, you requested
//   2100 tokens (2000 in the messages, 100 in the completion). Please reduce the
//   length of the messages or completion.
import { ApiError } from './errors.js';
import { DEFAULT_COMPLETION_MAX_TOKENS, type GenerationPlan } from './request-mapping.js';

export function contextLengthError(maxModelLen: number, promptLength: number, maxTokens: number | null): ApiError {
  const message = maxTokens === null
    ? `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptLength} tokens in the messages, ` +
      'Please reduce the length of the messages.'
    : `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptLength + maxTokens} tokens ` +
      `(${promptLength} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`;
  return new ApiError(400, message, maxTokens === null ? 'messages' : 'max_tokens');
}

/**
 * The max tokens of a prompt's choices: the client's, else 16 for
 * completions and the rest of the context for chat (vLLM's defaults).
 * Throws the context-length error when it does not fit.
 */
export function resolveMaxTokens(plan: GenerationPlan, promptLength: number, maxModelLen: number): number {
  if (plan.promptOnly) {
    // echo with max_tokens 0: the engine runs one step for the prompt's logprobs; that token is dropped
    if (promptLength + 1 > maxModelLen) throw contextLengthError(maxModelLen, promptLength, 0);
    return 1;
  }
  if (plan.maxTokens === null && plan.kind === 'chat') {
    if (promptLength >= maxModelLen) throw contextLengthError(maxModelLen, promptLength, null);
    return maxModelLen - promptLength;
  }
  const maxTokens = plan.maxTokens ?? DEFAULT_COMPLETION_MAX_TOKENS;
  if (promptLength + maxTokens > maxModelLen) throw contextLengthError(maxModelLen, promptLength, maxTokens);
  return maxTokens;
}
