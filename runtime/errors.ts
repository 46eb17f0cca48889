// Errors the runtime raises. Each names what went wrong and what to change.

export class MailboxFullError extends Error {
  override name = 'MailboxFullError';
  constructor(readonly path: string, readonly capacity: number) {
    super(`mailbox of ${path} is full (${capacity} messages, overflow policy "reject"); ` +
      `slow the sender down, or raise the actor's mailbox capacity`);
  }
}

export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
  constructor(readonly path: string, readonly timeoutMs: number, readonly correlationId: string) {
    super(`ask to ${path} got no reply within ${timeoutMs} ms (correlation id ${correlationId})`);
  }
}

export class ActorStoppedError extends Error {
  override name = 'ActorStoppedError';
  constructor(readonly path: string, detail = 'no actor is running there') {
    super(`cannot deliver to ${path}: ${detail}`);
  }
}

export class UnserializableMessageError extends Error {
  override name = 'UnserializableMessageError';
  constructor(readonly where: string, readonly what: string) {
    super(`message cannot cross a thread: ${where} is ${what}; ` +
      `send plain objects, arrays, strings, numbers, typed arrays, Map/Set/Date and ActorRefs only`);
  }
}

export class SupervisorEscalationError extends Error {
  override name = 'SupervisorEscalationError';
  constructor(readonly path: string, readonly restarts: number, readonly periodMs: number, readonly lastChild: string) {
    super(`supervisor ${path} exceeded its restart intensity (${restarts} restarts within ${periodMs} ms, ` +
      `last by child "${lastChild}"); escalating to its parent`);
  }
}

/** An Error flattened so it can travel in a message and be rebuilt on the other side. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
  /** Own fields of the runtime's errors (path, capacity, ...). */
  [field: string]: unknown;
}

export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) return { name: error.name, message: error.message, stack: error.stack };
  return { name: 'Error', message: String(error) };
}

export function fromErrorInfo(info: ErrorInfo): Error {
  const error = new Error(info.message);
  error.name = info.name;
  if (info.stack) error.stack = info.stack;
  return error;
}

const REVIVABLE: Record<string, { prototype: Error }> = {
  MailboxFullError,
  AskTimeoutError,
  ActorStoppedError,
  UnserializableMessageError,
  SupervisorEscalationError,
};

/** Rebuilds an error that crossed a thread, as an instance of its runtime class when it has one. */
export function reviveError(info: ErrorInfo): Error {
  const Class = REVIVABLE[info.name];
  if (!Class) return fromErrorInfo(info);
  // A real Error (with its internal slot) whose prototype is the runtime class.
  const error = Object.setPrototypeOf(new Error(info.message), Class.prototype) as Error;
  return Object.assign(error, info);
}
