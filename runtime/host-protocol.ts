// What a parent system and a child host (a worker thread, a child process, a
// node agent) post to each other. Envelopes travel as codec frames batched
// per tick; the rest are small control messages. The same protocol runs over
// a MessagePort (threads) and over a StreamPort (sockets).
import type { StopReason } from './actor.js';
import type { Frame } from './codec.js';
import type { ErrorInfo } from './errors.js';
import type { MailboxOptions } from './mailbox.js';

/** An actor for a child host to run: module URL + export (factories cannot cross). */
export interface HostedActorBoot {
  path: string;
  incarnation: string;
  spec: { module: string; export: string; args: unknown[]; mailbox: Partial<MailboxOptions> };
}

export interface ChildBoot {
  systemId: string;
  debugSerialize: boolean;
}

export type ToChild =
  | { t: 'env'; frames: Frame[] } // envelopes of one tick, in send order
  | { t: 'spawn'; boot: HostedActorBoot }
  | { t: 'stop'; path: string }
  | { t: 'ping' };

export type ToParent =
  | { t: 'env'; frames: Frame[] }
  | { t: 'started'; path: string }
  | { t: 'start-failed'; path: string; error: ErrorInfo }
  | { t: 'stopped'; path: string; reason: StopReason }
  | { t: 'register'; path: string }
  | { t: 'unregister'; path: string }
  | { t: 'ping' };

/** The parent-or-child end of a link: a MessagePort, a Worker, or a StreamPort. */
export interface Link {
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
}
