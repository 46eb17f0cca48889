// A node agent: joins a leader over TLS (authenticated by the join token's
// pre-shared key, tls-link.ts) and hosts the actors the leader places on it.
// The leader names them from the actor registry (actor-registry.ts); the
// agent never imports a module URL it was sent. Messages from the leader are
// decoded as plain data only (codec.ts, `peer`).
//
// Joining retries with capped exponential back-off while the leader is
// unreachable or asks it to (a node of the same name still being dropped);
// a leader that proves another key or refuses outright is final.
import { hostname } from 'node:os';
import { runChildHost } from '../child-host.js';
import { StreamPort } from '../stream-port.js';
import type { ActorSystem } from '../system.js';
import { DEFAULT_MAX_ATTACHMENTS, DEFAULT_MAX_FRAME_BYTES } from '../wire.js';
import { HANDSHAKE_MAX_FRAME_BYTES, isHandshakeReply, PROTOCOL_VERSION, type Hello, type Welcome } from './handshake.js';
import { Heartbeat } from './heartbeat.js';
import { checkJoinToken } from './join-token.js';
import { connectLink } from './tls-link.js';

export interface JoinOptions {
  host: string;
  port: number;
  token: string;
  name?: string;
  maxFrameBytes?: number;
  /** One attempt's limit (connect, TLS, welcome). */
  connectTimeoutMs?: number;
  /** Keep retrying a leader that cannot be reached for this long overall (0: one attempt). */
  retryForMs?: number;
  maxBackoffMs?: number;
}

export interface JoinedNode {
  system: ActorSystem;
  name: string;
  /** Settles when the connection to the leader ends, with why. */
  closed: Promise<string>;
  leave(): void;
}

/** Final: retrying cannot help (wrong key, refused hello). */
class JoinRefusedError extends Error {
  override name = 'JoinRefusedError';
}

/** Parses HOST:PORT (IPv6 as [::1]:PORT). */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) throw new Error(`--join wants HOST:PORT (e.g. 127.0.0.1:7070), got "${text}"`);
  return { host: match[1] ?? match[2]!, port };
}

/** Capped exponential back-off with jitter: attempt 0, 1, 2... */
function backoffMs(attempt: number, maxMs: number, baseMs = 100): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** JoinedNode.closed's reason when the leader let this node go (its shutdown): do not rejoin. */
export const RELEASED_BY_LEADER = 'released by the leader';

export async function joinLeader(options: JoinOptions): Promise<JoinedNode> {
  checkJoinToken(options.token);
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const deadline = Date.now() + (options.retryForMs ?? 0);
  for (let attempt = 0; ; attempt++) {
    try {
      return await joinOnce(options, name);
    } catch (error) {
      if (error instanceof JoinRefusedError || Date.now() >= deadline) throw error;
      const wait = Math.min(backoffMs(attempt, options.maxBackoffMs ?? 5000), Math.max(0, deadline - Date.now()));
      console.error(`[troupe] could not join yet (${(error as Error).message}); retrying in ${Math.round(wait)} ms`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

async function joinOnce(options: JoinOptions, name: string): Promise<JoinedNode> {
  const where = `${options.host}:${options.port}`;
  const socket = connectLink(options.host, options.port, options.token, name);
  const port = new StreamPort(socket, { peer: `leader ${where}`, codec: 'peer', maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES, maxAttachments: 0 });
  const closed = new Promise<string>((resolve) => port.once('close', resolve));
  let tlsError: Error | undefined;
  socket.once('error', (error) => (tlsError = error));
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const reply = await new Promise<Welcome>((resolve, reject) => {
    const timer = setTimeout(() => { port.close('timeout'); reject(new Error(`no welcome from the leader at ${where} within ${timeoutMs} ms`)); }, timeoutMs);
    socket.once('secureConnect', () => {
      const hello: Hello = { t: 'hello', name, pid: process.pid, version: PROTOCOL_VERSION };
      port.postMessage(hello);
    });
    port.once('message', (message: unknown) => {
      port.pause(); // what follows the welcome waits until the child host listens
      clearTimeout(timer);
      if (!isHandshakeReply(message)) {
        port.close('bad handshake reply');
        return reject(new JoinRefusedError(`the leader at ${where} answered the hello with something that is not a welcome`));
      }
      if (message.t === 'refused') {
        port.close('refused');
        const text = `the leader refused this node: ${message.why}`;
        return reject(message.retry ? new Error(text) : new JoinRefusedError(text));
      }
      resolve(message);
    });
    void closed.then((why) => {
      clearTimeout(timer);
      const code = (tlsError as NodeJS.ErrnoException | undefined)?.code ?? '';
      // an alert inside the handshake: the leader holds another key (or is not a Troupe leader)
      if (code.startsWith('ERR_SSL_')) return reject(new JoinRefusedError(`the TLS handshake with ${where} failed: wrong join token? (${code})`));
      reject(new Error(`could not join the leader at ${where}: ${why}`));
    });
  });
  port.setLimits({ maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, maxAttachments: DEFAULT_MAX_ATTACHMENTS });
  // only a 'leave' from the leader ends the link on purpose; any other close is a lost link, to be rejoined
  port.on('message', (message: { t?: unknown } | null) => {
    if (message?.t === 'leave') port.close(RELEASED_BY_LEADER);
  });
  const system = runChildHost(port, { systemId: reply.systemId, debugSerialize: false, peer: true });
  port.resume();
  new Heartbeat(port, reply.heartbeatMs, reply.heartbeatTimeoutMs, (silentMs) => {
    console.error(`[troupe] the leader has been silent for ${silentMs} ms; leaving`);
    port.close('leader heartbeat timeout');
  });
  return { system, name, closed, leave: () => port.close('left') };
}
