// A node agent: joins a leader over TCP and hosts the actors the leader
// places on it (`troupe node --join HOST:PORT --token SECRET`). It loads actor
// modules by the URLs the leader sends, so a node runs the same Troupe install
// at the same path as its leader.
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { runChildHost } from '../child-host.js';
import { StreamPort } from '../stream-port.js';
import type { ActorSystem } from '../system.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire.js';
import { PROTOCOL_VERSION, type HandshakeReply, type Hello } from './handshake.js';
import { Heartbeat } from './heartbeat.js';

export interface JoinOptions {
  host: string;
  port: number;
  token: string;
  name?: string;
  maxFrameBytes?: number;
  connectTimeoutMs?: number;
}

export interface JoinedNode {
  system: ActorSystem;
  name: string;
  /** Settles when the connection to the leader ends, with why. */
  closed: Promise<string>;
  leave(): void;
}

export class JoinRefusedError extends Error {
  override name = 'JoinRefusedError';
}

/** Parses HOST:PORT (IPv6 as [::1]:PORT). */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) throw new Error(`--join wants HOST:PORT (e.g. 127.0.0.1:7070), got "${text}"`);
  return { host: match[1] ?? match[2]!, port };
}

export async function joinLeader(options: JoinOptions): Promise<JoinedNode> {
  if (!options.token) throw new Error('joining a leader needs its join token (--token or TROUPE_JOIN_TOKEN)');
  const name = options.name ?? `${hostname()}-${process.pid}`;
  const socket = connect({ host: options.host, port: options.port });
  const port = new StreamPort(socket, { peer: `leader ${options.host}:${options.port}`, maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
  const closed = new Promise<string>((resolve) => port.once('close', resolve));
  const reply = await new Promise<HandshakeReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from the leader at ${options.host}:${options.port} within ${options.connectTimeoutMs ?? 10_000} ms`)), options.connectTimeoutMs ?? 10_000);
    socket.once('connect', () => {
      const hello: Hello = { t: 'hello', token: options.token, name, pid: process.pid, version: PROTOCOL_VERSION };
      port.postMessage(hello);
    });
    port.once('message', (message: HandshakeReply) => {
      port.pause(); // what follows the welcome waits until the child host listens
      clearTimeout(timer);
      resolve(message);
    });
    void closed.then((why) => { clearTimeout(timer); reject(new Error(`could not join the leader at ${options.host}:${options.port}: ${why}`)); });
  });
  if (reply.t !== 'welcome') {
    port.close('refused');
    throw new JoinRefusedError(`the leader refused this node: ${reply.t === 'refused' ? reply.why : 'unexpected answer'}`);
  }
  const system = runChildHost(port, { systemId: reply.systemId, debugSerialize: false });
  port.resume();
  new Heartbeat(port, reply.heartbeatMs, reply.heartbeatTimeoutMs, (silentMs) => {
    console.error(`[troupe] the leader has been silent for ${silentMs} ms; leaving`);
    port.close('leader heartbeat timeout');
  });
  return { system, name, closed, leave: () => port.close('left') };
}
