// A TCP relay for tests of faulty links: it listens on 127.0.0.1 (or a given
// host), forwards every connection to a target, and can
//   - delay every chunk by `delayMs` in each direction (order kept: one FIFO
//     per direction, drained by a single timer),
//   - cut every connection: 'reset' sends a TCP RST to both ends (a link that
//     died loudly) and resets new connections until restore(); 'close' ends
//     both with a FIN (a middlebox that closed them) and closes new ones at
//     once until restore(); 'silent'
//     drops every byte and forwards no close either way (a link that went
//     quiet: only heartbeats notice), and holds new connections mute,
//   - restore(): new connections are forwarded again; connections that lived
//     through a silent cut lost bytes, so they are reset.
// Backpressure: a direction stops reading from its source while more than
// HIGH_WATER bytes wait in its FIFO or its destination's buffer.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export type CutMode = 'reset' | 'close' | 'silent';

const HIGH_WATER = 4 << 20;

export interface RelayOptions {
  target: { host: string; port: number };
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Added to every chunk, in each direction. */
  delayMs?: number;
}

export class FaultyRelay {
  delayMs: number;
  /** Connections accepted, and bytes forwarded (both directions). */
  connections = 0;
  bytesForwarded = 0;
  /** Chunks that went through a delay, and the delay they really got (timers fire late, never early). */
  delayedChunks = 0;
  private delaySumMs = 0;
  private state: 'up' | CutMode = 'up';
  private readonly pairs = new Set<Pair>();
  /** Every socket accepted and not yet closed, whatever its pair's state: close() ends them all. */
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, private readonly target: RelayOptions['target'], delayMs: number) {
    this.delayMs = delayMs;
  }

  static async start(options: RelayOptions): Promise<FaultyRelay> {
    let relay!: FaultyRelay;
    const server = createServer({ noDelay: true }, (socket) => relay.accept(socket));
    relay = new FaultyRelay(server, options.target, options.delayMs ?? 0);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    return relay;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get open(): number {
    return this.pairs.size;
  }

  cut(mode: CutMode = 'reset'): void {
    this.state = mode;
    if (mode === 'reset') for (const pair of [...this.pairs]) pair.reset();
    else if (mode === 'close') for (const pair of [...this.pairs]) pair.end();
    else for (const pair of this.pairs) pair.mute();
  }

  restore(): void {
    this.state = 'up';
    for (const pair of [...this.pairs]) if (pair.muted) pair.reset();
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) pair.reset();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    this.connections++;
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    if (this.state === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (this.state === 'close') {
      client.on('error', () => {});
      client.end();
      return;
    }
    const pair = new Pair(client, this, () => this.pairs.delete(pair));
    this.pairs.add(pair);
    if (this.state === 'silent') pair.mute();
    else pair.connect(this.target);
  }

  get meanDelayMs(): number {
    return this.delayedChunks ? this.delaySumMs / this.delayedChunks : 0;
  }

  /** @internal */
  counted(bytes: number, delayedMs?: number): void {
    this.bytesForwarded += bytes;
    if (delayedMs !== undefined) {
      this.delayedChunks++;
      this.delaySumMs += delayedMs;
    }
  }
}

/** One relayed connection: the client's socket and ours to the target. */
class Pair {
  muted = false;
  private upstream: Socket | null = null;
  private done = false;

  constructor(private readonly client: Socket, private readonly relay: FaultyRelay, private readonly onDone: () => void) {
    client.setNoDelay(true);
    client.on('error', () => this.failed(this.upstream));
    client.on('close', () => this.closed());
    client.on('data', () => {}); // read (and drop) until connected or forever when muted
  }

  connect(target: RelayOptions['target']): void {
    const upstream = connect({ host: target.host, port: target.port, noDelay: true });
    this.upstream = upstream;
    upstream.on('error', () => this.failed(this.client));
    upstream.on('close', () => this.closed());
    this.client.removeAllListeners('data');
    this.client.pause();
    upstream.once('connect', () => {
      if (this.done || this.muted) return;
      new DelayLine(this.client, upstream, this);
      new DelayLine(upstream, this.client, this);
      this.client.resume();
    });
  }

  get delayMs(): number {
    return this.relay.delayMs;
  }

  counted(bytes: number, delayedMs?: number): void {
    this.relay.counted(bytes, delayedMs);
  }

  /** From now on nothing passes, not even a close. */
  mute(): void {
    this.muted = true;
    for (const socket of [this.client, this.upstream]) {
      if (!socket) continue;
      socket.removeAllListeners('data');
      socket.removeAllListeners('end');
      socket.on('data', () => {});
      socket.resume();
    }
  }

  /** Both ends get a FIN, nothing else passes. */
  end(): void {
    this.done = true;
    for (const socket of [this.client, this.upstream]) {
      if (!socket) continue;
      socket.removeAllListeners('data');
      socket.on('data', () => {});
      socket.end();
      socket.setTimeout(5000, () => socket.destroy());
    }
    this.onDone();
  }

  reset(): void {
    this.muted = false;
    this.done = true;
    for (const socket of [this.client, this.upstream]) if (socket && !socket.destroyed) socket.resetAndDestroy();
    this.onDone();
  }

  /** One side failed (reset, refused): the other is reset too, unless muted (nothing is told then). */
  private failed(other: Socket | null): void {
    if (this.done || this.muted) return;
    if (other && !other.destroyed) other.resetAndDestroy();
  }

  /**
   * A clean end travels as data does (the DelayLine ends the other side after
   * what was in flight); the pair is done once both sockets closed.
   */
  private closed(): void {
    if (this.done) return;
    if (this.client.destroyed && this.upstream?.connecting) this.upstream.destroy();
    if (this.client.destroyed && (this.upstream === null || this.upstream.destroyed)) {
      this.done = true;
      this.onDone();
    } else if (this.upstream === null && !this.muted) {
      this.done = true;
      this.onDone();
    }
  }
}

/** One direction of a pair: source bytes wait `delayMs`, in order, then go to the destination. */
class DelayLine {
  private readonly queue: { arrived: number; due: number; chunk: Buffer | null }[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly source: Socket, private readonly destination: Socket, private readonly pair: Pair) {
    source.on('data', (chunk: Buffer) => this.push(chunk));
    source.on('end', () => this.push(null));
    destination.on('drain', () => this.throttle());
  }

  /** A chunk, or null for the source's end. */
  private push(chunk: Buffer | null): void {
    if (this.pair.muted) return;
    if (this.pair.delayMs === 0 && this.queue.length === 0 && chunk !== null) {
      this.pair.counted(chunk.length);
      this.destination.write(chunk);
      this.throttle();
      return;
    }
    const arrived = performance.now();
    this.queue.push({ arrived, due: arrived + this.pair.delayMs, chunk });
    this.queued += chunk?.length ?? 0;
    this.throttle();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => this.drain(), Math.max(0, this.queue[0]!.due - performance.now()));
  }

  private drain(): void {
    this.timer = null;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { arrived, chunk } = this.queue.shift()!;
      if (this.pair.muted || this.destination.destroyed) continue;
      if (chunk === null) {
        this.destination.end();
        continue;
      }
      this.queued -= chunk.length;
      this.pair.counted(chunk.length, now - arrived);
      this.destination.write(chunk);
    }
    this.throttle();
    this.schedule();
  }

  private throttle(): void {
    if (this.queued + this.destination.writableLength > HIGH_WATER) this.source.pause();
    else if (!this.pair.muted) this.source.resume();
  }
}
