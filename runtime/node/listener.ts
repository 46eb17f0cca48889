// The leader's TCP listener for node agents (`troupe node --join HOST:PORT
// --token SECRET`). It binds 127.0.0.1 unless told otherwise, refuses a wrong
// or missing token, and closes a connection that sends an oversized or
// malformed frame, or anything but a hello before it is welcomed.
import { nanoid } from 'nanoid';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { StreamPort } from '../stream-port.js';
import type { ActorSystem } from '../system.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../wire.js';
import { checkNodeName, isHello, PROTOCOL_VERSION, tokensMatch, type HandshakeReply } from './handshake.js';
import { NodeHost } from './node-host.js';

export interface NodeListenerOptions {
  token: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
  maxFrameBytes?: number;
  /** A connection that has not said a valid hello by then is closed. */
  handshakeTimeoutMs?: number;
}

export class NodeListener {
  private readonly waiters: { name: string; resolve: (node: NodeHost) => void }[] = [];
  private readonly joined = new Map<string, NodeHost>();

  private constructor(private readonly server: Server, private readonly system: ActorSystem, private readonly options: Required<NodeListenerOptions>) {}

  static async listen(system: ActorSystem, options: NodeListenerOptions): Promise<NodeListener> {
    if (!options.token) throw new Error('a node listener needs a join token (--token or TROUPE_JOIN_TOKEN); refusing to accept nodes without one');
    const full: Required<NodeListenerOptions> = {
      host: '127.0.0.1', port: 0, heartbeatMs: 1000, heartbeatTimeoutMs: 5000, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, handshakeTimeoutMs: 5000, ...options,
    };
    const server = createServer();
    const listener = new NodeListener(server, system, full);
    server.on('connection', (socket) => listener.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(full.port, full.host, () => resolve());
    });
    return listener;
  }

  get address(): { host: string; port: number } {
    const address = this.server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  /** Resolves once a node with this name has joined. */
  waitForNode(name: string): Promise<NodeHost> {
    const node = this.joined.get(name);
    if (node) return Promise.resolve(node);
    return new Promise((resolve) => this.waiters.push({ name, resolve }));
  }

  async close(): Promise<void> {
    for (const node of this.joined.values()) await node.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const port = new StreamPort(socket, { peer: `node connection ${peer}`, maxFrameBytes: this.options.maxFrameBytes });
    const timer = setTimeout(() => this.refuse(port, `no hello within ${this.options.handshakeTimeoutMs} ms`), this.options.handshakeTimeoutMs);
    port.on('close', () => clearTimeout(timer));
    port.once('message', (message: unknown) => {
      clearTimeout(timer);
      if (!isHello(message)) return this.refuse(port, 'the first message must be a hello');
      if (!tokensMatch(message.token, this.options.token)) return this.refuse(port, 'wrong join token');
      if (message.version !== PROTOCOL_VERSION) return this.refuse(port, `protocol version ${message.version}, the leader speaks ${PROTOCOL_VERSION}`);
      const badName = checkNodeName(message.name);
      if (badName) return this.refuse(port, badName);
      if (this.system.nodeNames().includes(message.name)) return this.refuse(port, `a node named "${message.name}" has already joined`);
      const node = new NodeHost(this.system, nanoid(10), message.name, message.pid, port, this.options.heartbeatMs, this.options.heartbeatTimeoutMs);
      this.system.addNode(message.name, node);
      this.joined.set(message.name, node);
      port.on('close', () => this.joined.delete(message.name));
      const welcome: HandshakeReply = {
        t: 'welcome', systemId: node.childSystemId, heartbeatMs: this.options.heartbeatMs, heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
      };
      port.postMessage(welcome);
      for (const waiter of this.waiters.filter((w) => w.name === message.name)) waiter.resolve(node);
      this.waiters.splice(0, this.waiters.length, ...this.waiters.filter((w) => w.name !== message.name));
    });
  }

  private refuse(port: StreamPort, why: string): void {
    console.error(`[troupe] refused ${port.peer}: ${why}`);
    const reply: HandshakeReply = { t: 'refused', why };
    port.postMessage(reply);
    port.end();
    setTimeout(() => port.close(`refused: ${why}`), 100).unref();
  }
}
