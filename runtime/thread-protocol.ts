// What the parent and a worker thread post to each other. Envelopes travel as
// codec frames (msgpack bytes + transferred / shared buffers); the few control
// messages are plain objects.
import type { StopReason } from './actor.js';
import type { Frame } from './codec.js';
import type { ErrorInfo } from './errors.js';
import type { MailboxOptions } from './mailbox.js';

export interface WorkerBoot {
  path: string;
  incarnation: string;
  systemId: string;
  spec: { module: string; export: string; args: unknown[]; mailbox: Partial<MailboxOptions> };
  debugSerialize: boolean;
}

/** `frames`: the envelopes of one tick, in send order (see FrameBatcher). */
export type ToWorker = { t: 'env'; frames: Frame[] } | { t: 'stop' };

export type ToParent =
  | { t: 'env'; frames: Frame[] }
  | { t: 'started' }
  | { t: 'start-failed'; error: ErrorInfo }
  | { t: 'stopped'; reason: StopReason }
  | { t: 'register'; path: string }
  | { t: 'unregister'; path: string };
