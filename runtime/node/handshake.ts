// The join handshake between a node agent and its leader, over a StreamPort:
//
//   agent  -> leader   { t: 'hello', token, name, pid, version }
//   leader -> agent    { t: 'welcome', systemId, heartbeatMs, heartbeatTimeoutMs }
//                   or { t: 'refused', why }   and the leader closes the connection
//
// After the welcome both sides speak the host protocol (host-protocol.ts) and
// send { t: 'ping' } every heartbeatMs; a side that hears nothing for
// heartbeatTimeoutMs declares the other dead and closes the connection.
import { createHash, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = 1;

export interface Hello {
  t: 'hello';
  token: string;
  name: string;
  pid: number;
  version: number;
}

export type HandshakeReply =
  | { t: 'welcome'; systemId: string; heartbeatMs: number; heartbeatTimeoutMs: number }
  | { t: 'refused'; why: string };

export function isHello(message: unknown): message is Hello {
  const m = message as Partial<Hello> | null;
  return !!m && m.t === 'hello' && typeof m.token === 'string' && typeof m.name === 'string' &&
    typeof m.pid === 'number' && typeof m.version === 'number';
}

/** Constant-time comparison (of digests, so lengths never leak either). */
export function tokensMatch(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

const NODE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkNodeName(name: string): string | null {
  return NODE_NAME.test(name) ? null : `node name "${name}" must be 1-64 letters, digits, _ . -`;
}
