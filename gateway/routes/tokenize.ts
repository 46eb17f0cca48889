// POST /tokenize and /detokenize, vLLM's shapes:
//
//   /tokenize   { model, prompt, add_special_tokens }         -> { count, max_model_len, tokens, token_strs }
//               { model, messages, add_generation_prompt, ... }
//   /detokenize { model, tokens }                              -> { prompt }
import type { GatewayContext } from '../context.js';
import { PromptTooLongError } from '../engine-client.js';
import { contextLengthError } from '../context-length.js';
import { detokenizeRequestSchema, parseBody, tokenizeRequestSchema } from '../schemas.js';
import { badRequest } from '../errors.js';
import { chatMessages } from '../request-mapping.js';

export async function tokenizeRoute(ctx: GatewayContext, body: unknown): Promise<unknown> {
  const request = parseBody(tokenizeRequestSchema, body);
  ctx.models.resolve(request.model);
  let tokens: number[];
  try {
    if ('messages' in request) {
      if (request.continue_final_message) throw badRequest('continue_final_message is not supported yet', 'continue_final_message');
      const messages = chatMessages(request.messages);
      tokens = (await ctx.engine.tokenize({ kind: 'chat', messages }, {
        addGenerationPrompt: request.add_generation_prompt ?? true,
        addSpecialTokens: request.add_special_tokens ?? false,
        ...(request.chat_template_kwargs ? { templateKwargs: request.chat_template_kwargs } : {}),
      })).tokenIds;
    } else {
      if (request.prompt === '') return { count: 0, max_model_len: ctx.engine.maxModelLen, tokens: [], token_strs: null };
      tokens = (await ctx.engine.tokenize({ kind: 'text', text: request.prompt }, { addSpecialTokens: request.add_special_tokens ?? true })).tokenIds;
    }
  } catch (error) {
    if (error instanceof PromptTooLongError) throw contextLengthError(ctx.engine.maxModelLen, error.promptLength, null);
    throw error;
  }
  return {
    count: tokens.length,
    max_model_len: ctx.engine.maxModelLen,
    tokens,
    token_strs: request.return_token_strs ? tokens.map((id) => ctx.engine.vocab.idToToken(id) ?? '') : null,
  };
}

export async function detokenizeRoute(ctx: GatewayContext, body: unknown): Promise<unknown> {
  const request = parseBody(detokenizeRequestSchema, body);
  ctx.models.resolve(request.model);
  return { prompt: await ctx.engine.detokenize(request.tokens) };
}
