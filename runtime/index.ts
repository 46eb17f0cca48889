// The actor runtime's public surface.
export { Actor, moduleActor, type ActorContext, type ActorSpec, type Placement as PlacementKind, type Signal, type StopReason } from './actor.js';
export { ActorRef, type AskOptions } from './ref.js';
export { ActorSystem, DEFAULT_ASK_TIMEOUT_MS, DEFAULT_STOP_TIMEOUT_MS, type Placement, type SystemEvent, type SystemOptions } from './system.js';
export { Supervisor, supervise, validateSupervisorSpec, type ChildInfo, type ChildSpec, type Restart, type Strategy, type SupervisorMessage, type SupervisorSpec } from './supervisor.js';
export { BoundedMailbox, DEFAULT_MAILBOX, type MailboxOptions, type MailboxStats, type OverflowPolicy } from './mailbox.js';
export { assertSerializable, decodeFrame, encodeFrame, roundTrip, type Frame } from './codec.js';
export type { ActorStats } from './cell.js';
export * from './errors.js';
