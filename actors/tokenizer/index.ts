// The tokenizer's public surface: the plain class, the pool, the actor and its messages.
export { Tokenizer, type ChatTemplateOptions, type DecodeOptions, type EncodeOptions, type TokenizerOptions } from './tokenizer.js';
export { Vocabulary } from './vocabulary.js';
export { ChatTemplate, NO_CHAT_TEMPLATE_MESSAGE, resolveChatTemplateOption, strftime } from './chat-template.js';
export { TokenizerPool, defaultTokenizerThreads, type TokenizerPoolOptions } from './pool.js';
export { TokenizerActor, type TokenizerActorOptions } from './actor.js';
export type { DecodeReply, TokenizeOptions, TokenizeReply, TokenizerInfo, TokenizerMessage } from './messages.js';
export { CHAT_ROLES, checkPromptLength, checkTokenIds, validatePromptInput, type ChatMessage, type ChatRole, type PromptInput, type TextPart } from './prompt.js';
export { ChatTemplateError, PromptError, TokenizerLoadError, reviveTokenizerError, type TokenizerErrorInfo } from './errors.js';
