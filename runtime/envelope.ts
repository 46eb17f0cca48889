// Envelopes: what the routers of actor systems pass among themselves. Every
// envelope names the path it goes `to`; the router of each thread delivers it
// to a local cell or forwards it toward the thread that hosts the path.
//
// Reply paths of asks and acknowledged sends look like `$ask/<systemId>/<id>`
// (id from nanoid): the router sends them back to the system that made them.
import type { StopReason } from './actor.js';
import type { ErrorInfo } from './errors.js';

export type Envelope =
  /** A user message. `ask` / `ack` / `from` are where a refusal is reported. */
  | { k: 'msg'; to: string; body: unknown; from?: string; ask?: string; ack?: string }
  /** Delivery to `target` failed; `to` is the sender, ask or ack path. */
  | { k: 'fail'; to: string; target: string; error: ErrorInfo }
  | { k: 'watch'; to: string; watcher: string }
  | { k: 'unwatch'; to: string; watcher: string }
  | { k: 'terminated'; to: string; target: string; incarnation: string; reason: StopReason }
  | { k: 'stop'; to: string }
  | { k: 'inspect'; to: string; replyTo: string };

export const ASK_PREFIX = '$ask/';

export function askPath(systemId: string, correlationId: string): string {
  return `${ASK_PREFIX}${systemId}/${correlationId}`;
}

/** The system id inside an ask path, or undefined for an actor path. */
export function askSystemOf(path: string): string | undefined {
  if (!path.startsWith(ASK_PREFIX)) return undefined;
  const end = path.indexOf('/', ASK_PREFIX.length);
  return end < 0 ? undefined : path.slice(ASK_PREFIX.length, end);
}

const SEGMENT = /^[A-Za-z0-9_.-]+$/;

/** Actor paths are `/`-separated segments of letters, digits, `_`, `.`, `-`. */
export function checkActorPath(path: string): void {
  if (typeof path !== 'string' || path.length === 0 || !path.split('/').every((s) => SEGMENT.test(s))) {
    throw new TypeError(`invalid actor path "${String(path)}": use /-separated names of letters, digits, _ . -`);
  }
}
