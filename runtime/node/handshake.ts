// The join handshake between a node agent and its leader. It runs inside a
// TLS link already authenticated by the join token's pre-shared key
// (tls-link.ts), so the token itself never travels:
//
//   agent  -> leader   { t: 'hello', name, pid, version }          (one small frame, no attachments)
//   leader -> agent    { t: 'welcome', systemId, heartbeatMs, heartbeatTimeoutMs }
//                   or { t: 'refused', why, retry }   and the leader closes the connection
//
// After the welcome both sides speak the host protocol (host-protocol.ts) and
// send { t: 'ping' } every heartbeatMs; a side that hears nothing for
// heartbeatTimeoutMs declares the other dead and closes the connection.
export const PROTOCOL_VERSION = 2;
/** The hello and the welcome are small; a larger frame before the welcome closes the link. */
export const HANDSHAKE_MAX_FRAME_BYTES = 4096;

export interface Hello {
  t: 'hello';
  name: string;
  pid: number;
  version: number;
}

export type Welcome = { t: 'welcome'; systemId: string; heartbeatMs: number; heartbeatTimeoutMs: number };
/** `retry`: the refusal may pass (a node of that name is still being dropped), so try again later. */
export type HandshakeReply = Welcome | { t: 'refused'; why: string; retry: boolean };

export function isHello(message: unknown): message is Hello {
  const m = message as Partial<Hello> | null;
  return !!m && typeof m === 'object' && m.t === 'hello' && typeof m.name === 'string' &&
    Number.isSafeInteger(m.pid) && Number.isSafeInteger(m.version);
}

const SYSTEM_ID = /^[A-Za-z0-9_-]{1,32}$/;
const finite = (n: unknown, min: number, max: number) => typeof n === 'number' && Number.isFinite(n) && n >= min && n <= max;

export function isHandshakeReply(message: unknown): message is HandshakeReply {
  const m = message as Record<string, unknown> | null;
  if (!m || typeof m !== 'object') return false;
  if (m.t === 'refused') return typeof m.why === 'string' && typeof m.retry === 'boolean';
  return m.t === 'welcome' && typeof m.systemId === 'string' && SYSTEM_ID.test(m.systemId) &&
    finite(m.heartbeatMs, 1, 3_600_000) && finite(m.heartbeatTimeoutMs, 1, 3_600_000);
}

const NODE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkNodeName(name: string): string | null {
  return NODE_NAME.test(name) ? null : `node name "${name.slice(0, 80)}" must be 1-64 letters, digits, _ . -`;
}
