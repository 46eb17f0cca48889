// Errors of the tokenizer: each names the file or the value at fault and what to change.

/** tokenizer.json / tokenizer_config.json missing, unreadable, or not a tokenizer we support. */
export class TokenizerLoadError extends Error {
  override readonly name = 'TokenizerLoadError';
  constructor(readonly file: string, message: string, options: { cause?: unknown } = {}) {
    super(`${file}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** No chat template to render, or one that failed to load or render. */
export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';
}

/**
 * A prompt the engine refuses (the client's fault: an HTTP 400 at the gateway).
 * Never a reason to truncate: the request is rejected as a whole.
 */
export class PromptError extends Error {
  override readonly name = 'PromptError';
}

/** A prompt longer than the context allows: `promptLength` says how long. */
export class PromptTooLongError extends PromptError {
  constructor(message: string, readonly promptLength: number) {
    super(message);
  }
}

/** An error flattened so it crosses threads and actor replies (structured clone drops custom names). */
export interface TokenizerErrorInfo {
  name: string;
  message: string;
  /** A prompt refused for its length: how many tokens it has. */
  promptLength?: number;
}

export function errorInfo(error: unknown): TokenizerErrorInfo {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

const REVIVE: Record<string, new (message: string) => Error> = { PromptError, ChatTemplateError };

/** Rebuilds a PromptTooLongError / PromptError / ChatTemplateError from its info (others become plain Errors with the name kept). */
export function reviveTokenizerError(info: TokenizerErrorInfo): Error {
  if (info.promptLength !== undefined) return new PromptTooLongError(info.message, info.promptLength);
  const Class = REVIVE[info.name];
  if (Class) return new Class(info.message);
  const error = new Error(info.message);
  error.name = info.name;
  return error;
}
