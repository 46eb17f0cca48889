// The leader's listener for node agents (`troupe node --join HOST:PORT`, the
// token from --join-token-file or TROUPE_JOIN_TOKEN). It binds 127.0.0.1
// unless told otherwise and speaks TLS authenticated by the join token's
// pre-shared key (tls-link.ts): a peer without the token fails inside the
// TLS handshake and nothing it sent is ever decoded.
//
// Before a node is welcomed: at most `maxConnections` sockets, one pending
// handshake per address with back-off after failures (admission.ts), a
// hello of one small frame without attachments, `handshakeTimeoutMs` to say
// it. Any bad frame closes that connection, never the process.
import { nanoid } from 'nanoid';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { ActorSystem } from '../system.js';
import { StreamPort } from '../stream-port.js';
import { DEFAULT_MAX_ATTACHMENTS, DEFAULT_MAX_FRAME_BYTES } from '../wire.js';
import { AdmissionGate, DEFAULT_ADMISSION, type AdmissionOptions } from './admission.js';
import { checkNodeName, HANDSHAKE_MAX_FRAME_BYTES, isHello, PROTOCOL_VERSION, type HandshakeReply } from './handshake.js';
import { checkJoinToken } from './join-token.js';
import { NodeHost } from './node-host.js';
import { createLinkServer } from './tls-link.js';

export interface NodeListenerOptions {
  token: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  heartbeatMs?: number;
  /**
   * Silence that declares the peer dead (default 30 s: a node loading
   * gigabytes of weights on a busy machine can hold its event loop for
   * seconds; a closed or reset connection is noticed at once anyway).
   */
  heartbeatTimeoutMs?: number;
  /** Frame limit once a node is welcomed. */
  maxFrameBytes?: number;
  /** A connection that has not said a valid hello by then is closed. */
  handshakeTimeoutMs?: number;
  /** Open sockets at once, joined nodes included. */
  maxConnections?: number;
  admission?: Partial<AdmissionOptions>;
}

export class NodeListener {
  private readonly waiters: { name: string; resolve: (node: NodeHost) => void }[] = [];
  private readonly joined = new Map<string, NodeHost>();
  /** Raw socket -> ends its pending admission (once). */
  private readonly admissions = new WeakMap<Socket, () => void>();
  /** Every raw socket still open: close() ends them all (a TLS socket does not always end the socket it wraps). */
  private readonly sockets = new Set<Socket>();
  readonly gate: AdmissionGate;
  /** Handshakes that failed (TLS or hello), for tests and metrics. */
  failedHandshakes = 0;
  private logged = 0;

  private constructor(private readonly server: Server, private readonly tls: TlsServer, private readonly system: ActorSystem, private readonly options: Required<Omit<NodeListenerOptions, 'admission'>>, admission: AdmissionOptions) {
    this.gate = new AdmissionGate(admission);
  }

  static async listen(system: ActorSystem, options: NodeListenerOptions): Promise<NodeListener> {
    if (!options.token) throw new Error('a node listener needs a join token (--join-token-file or TROUPE_JOIN_TOKEN); refusing to accept nodes without one');
    checkJoinToken(options.token);
    const { admission, ...rest } = options;
    const full: Required<Omit<NodeListenerOptions, 'admission'>> = {
      host: '127.0.0.1', port: 0, heartbeatMs: 1000, heartbeatTimeoutMs: 30_000, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES, handshakeTimeoutMs: 5000, maxConnections: 64, ...rest,
    };
    // TCP is accepted here, admitted, and only then handed to TLS (which never listens itself)
    let listener!: NodeListener;
    const tls = createLinkServer(full.token, (socket) => listener.accept(socket));
    const server = createServer((raw) => listener.admit(raw));
    listener = new NodeListener(server, tls, system, full, { ...DEFAULT_ADMISSION, ...admission });
    server.maxConnections = full.maxConnections;
    tls.on('tlsClientError', (error: Error, socket: TLSSocket) => listener.handshakeFailed(socket.remoteAddress ?? '?', `TLS handshake failed (${error.message.split('\n')[0]})`));
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
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A raw TCP connection, before any TLS byte is read. */
  private admit(raw: Socket): void {
    const address = raw.remoteAddress ?? '?';
    const refused = this.gate.admit(address);
    if (refused) {
      this.log(`refused a connection from ${address}: ${refused}`);
      raw.destroy();
      return;
    }
    this.sockets.add(raw);
    raw.once('close', () => this.sockets.delete(raw));
    let settled = false;
    const settle = () => {
      if (!settled) this.gate.settle(address);
      settled = true;
    };
    this.admissions.set(raw, settle);
    raw.once('close', settle);
    // a peer that neither completes TLS nor says hello in time is dropped
    const timer = setTimeout(() => {
      if (settled) return;
      this.handshakeFailed(address, `no hello within ${this.options.handshakeTimeoutMs} ms`);
      raw.destroy();
    }, this.options.handshakeTimeoutMs);
    timer.unref();
    raw.once('close', () => clearTimeout(timer));
    raw.on('error', () => {}); // a reset before TLS starts is not this process's problem
    this.tls.emit('connection', raw);
  }

  /** An authenticated TLS connection: it still has to say a valid hello. */
  private accept(socket: TLSSocket): void {
    const address = socket.remoteAddress ?? '?';
    // a server-side TLSSocket wraps the raw socket the 'connection' event saw (Node keeps it as _parent)
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    const settle = () => (raw ? this.admissions.get(raw)?.() : undefined);
    socket.once('close', () => raw?.destroy());
    const port = new StreamPort(socket, {
      peer: `node connection ${address}:${socket.remotePort}`, codec: 'peer', maxFrameBytes: HANDSHAKE_MAX_FRAME_BYTES, maxAttachments: 0,
    });
    port.on('close', (why: string) => {
      if (why.startsWith('protocol error')) this.handshakeFailed(address, why);
    });
    port.once('message', (message: unknown) => {
      if (!isHello(message)) return this.refuse(port, address, 'the first message must be a hello', false);
      if (message.version !== PROTOCOL_VERSION) return this.refuse(port, address, `protocol version ${message.version}, the leader speaks ${PROTOCOL_VERSION}`, false);
      const badName = checkNodeName(message.name);
      if (badName) return this.refuse(port, address, badName, false);
      if (this.system.nodeNames().includes(message.name)) return this.refuse(port, address, `a node named "${message.name}" has already joined`, true);
      settle();
      this.gate.succeeded(address);
      port.setLimits({ maxFrameBytes: this.options.maxFrameBytes, maxAttachments: DEFAULT_MAX_ATTACHMENTS });
      const node = new NodeHost(this.system, nanoid(10), message.name, message.pid, port, this.options.heartbeatMs, this.options.heartbeatTimeoutMs);
      this.system.addNode(message.name, node);
      this.joined.set(message.name, node);
      port.on('close', () => { if (this.joined.get(message.name) === node) this.joined.delete(message.name); });
      const welcome: HandshakeReply = {
        t: 'welcome', systemId: node.childSystemId, heartbeatMs: this.options.heartbeatMs, heartbeatTimeoutMs: this.options.heartbeatTimeoutMs,
      };
      port.postMessage(welcome);
      for (const waiter of this.waiters.filter((w) => w.name === message.name)) waiter.resolve(node);
      this.waiters.splice(0, this.waiters.length, ...this.waiters.filter((w) => w.name !== message.name));
    });
  }

  private handshakeFailed(address: string, why: string): void {
    this.failedHandshakes++;
    this.gate.failed(address);
    this.log(`refused ${address}: ${why}`);
  }

  private refuse(port: StreamPort, address: string, why: string, retry: boolean): void {
    if (!retry) this.handshakeFailed(address, why);
    else this.log(`refused ${port.peer}: ${why}`);
    const reply: HandshakeReply = { t: 'refused', why, retry };
    port.postMessage(reply);
    port.end();
    setTimeout(() => port.close(`refused: ${why}`), 100).unref();
  }

  /** The first refusals, then every thousandth: a flood of connects cannot flood the log. */
  private log(line: string): void {
    this.logged++;
    if (this.logged <= 50 || this.logged % 1000 === 0) console.error(`[troupe] node listener: ${line}`);
  }
}
