// A cell is what a router finds at a path: the actor itself (LocalCell) or a
// proxy for an actor hosted by a worker thread (ThreadCell).
import type { StopReason } from './actor.js';
import type { Envelope } from './envelope.js';
import type { MailboxStats } from './mailbox.js';

export interface ActorStats {
  path: string;
  incarnation: string;
  placement: 'local' | 'thread';
  threadId: number;
  mailbox: MailboxStats;
  processed: number;
}

export interface Cell {
  readonly path: string;
  readonly incarnation: string;
  /** Settles once, with the reason this incarnation stopped. */
  readonly terminated: Promise<StopReason>;
  deliver(envelope: Envelope): void;
  /** Graceful: the actor finishes its current message, runs postStop, then stops. */
  requestStop(): void;
  /** Immediate: no further message is handled, postStop does not run. */
  kill(detail: string): void;
}
