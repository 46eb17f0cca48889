// What a parent system and a child host (a worker thread, a child process, a
// node agent) post to each other. Envelopes travel as codec frames batched
// per tick; the rest are small control messages. The same protocol runs over
// a MessagePort (threads) and over a StreamPort (sockets).
import type { StopReason } from './actor.js';
import type { Frame } from './codec.js';
import type { ErrorInfo } from './errors.js';
import type { MailboxOptions } from './mailbox.js';

/**
 * An actor for a child host to run (factories cannot cross). A thread or a
 * child process of this install gets a module URL + export; a node gets a
 * name from its actor registry (node/actor-registry.ts) and never a URL.
 */
export interface HostedActorBoot {
  path: string;
  incarnation: string;
  spec: { module?: string; export?: string; actor?: string; args: unknown[]; mailbox: Partial<MailboxOptions> };
}

export interface ChildBoot {
  systemId: string;
  debugSerialize: boolean;
  /** A node agent: the parent is a peer (plain-data codec; actors by registry name only). */
  peer?: boolean;
}

export type ToChild =
  | { t: 'env'; frames: Frame[] } // envelopes of one tick, in send order
  | { t: 'spawn'; boot: HostedActorBoot }
  | { t: 'stop'; path: string }
  | { t: 'ping' }
  // a node's leader lets it go (shutdown): the agent exits instead of rejoining
  | { t: 'leave' };

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
