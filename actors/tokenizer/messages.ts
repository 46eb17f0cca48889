// Messages the tokenizer actor receives, and its replies. Replies carry a
// refusal as data ({ ok: false, error }) so the asker can tell a bad prompt
// (PromptError: the client's fault) from a broken tokenizer.
import type { ActorRef } from '../../runtime/index.js';
import type { TokenizerErrorInfo } from './errors.js';
import type { PromptInput } from './prompt.js';

export interface TokenizeOptions {
  /**
   * Add BOS. Default: true for text prompts, false for chat (the template
   * writes it); never a second BOS either way. Ignored for token prompts.
   */
  addSpecialTokens?: boolean;
  /** Chat only: end with the assistant header. Default true. */
  addGenerationPrompt?: boolean;
  /** Chat only: extra template variables (vLLM's chat_template_kwargs). */
  templateKwargs?: Record<string, unknown>;
  /** Chat only: the request's tools, as the template's `tools` (HF's apply_chat_template(tools=...)). */
  tools?: Record<string, unknown>[];
  /** The client's max_tokens, when it set one: prompt + max_tokens must fit max_model_len. */
  maxTokens?: number;
}

export type TokenizeReply =
  | {
    ok: true;
    promptTokenIds: number[];
    /** The prompt as text: the text given, or the rendered chat template; null for token prompts. */
    prompt: string | null;
  }
  | { ok: false; error: TokenizerErrorInfo };

export type DecodeReply = { ok: true; text: string } | { ok: false; error: TokenizerErrorInfo };

export interface TokenizerInfo {
  /** Token ids accepted in prompts are integers in [0, vocabSize). */
  vocabSize: number;
  maxModelLen: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  specialTokenIds: number[];
  hasChatTemplate: boolean;
  threads: number;
}

export type TokenizerMessage =
  | { type: 'tokenize'; prompt: PromptInput; options?: TokenizeOptions; replyTo: ActorRef<TokenizeReply> }
  | { type: 'decode'; tokenIds: number[]; skipSpecialTokens?: boolean; replyTo: ActorRef<DecodeReply> }
  | { type: 'info'; replyTo: ActorRef<TokenizerInfo> };
