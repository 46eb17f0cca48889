// The detokenizer's public surface: the per-request class, the actor and its messages.
export { IncrementalDetokenizer, type DetokenizeParams, type DetokenizerUpdate } from './incremental.js';
export { findStop, holdbackLength, type StopMatch } from './stop-strings.js';
export { DetokenizerActor, type DetokenizerActorOptions } from './actor.js';
export type { CreateReply, DeltaReply, DetokenizerMessage, TokensForRequest } from './messages.js';
