// ActorSystem: one per thread. It owns the registry of cells at paths, the
// router that moves envelopes between them, pending asks, and spawning.
//
// Routing (the same code in every thread):
//   1. a path in this thread's registry        -> that cell
//   2. `$ask/<id>/...` with this system's id    -> settle the pending ask
//      `$ask/<id>/...` of a child system        -> that child host
//   3. anything else: a child host (worker thread, child process, node agent)
//      forwards it to its parent, which knows every path; the root system
//      reports it as a dead letter.
import { nanoid } from 'nanoid';
import { Subject } from 'rxjs';
import { instantiate, placementLabel, type ActorSpec, type StopReason } from './actor.js';
import type { ActorStats, Cell } from './cell.js';
import { assertSerializable, decodeFrame, roundTrip, type CodecProfile, type Frame } from './codec.js';
import { FrameBatcher } from './frame-batcher.js';
import { askPath, askSystemOf, checkActorPath, type Envelope } from './envelope.js';
import { ActorStoppedError, AskTimeoutError, reviveError, toErrorInfo, type ErrorInfo } from './errors.js';
import { LocalCell } from './local-cell.js';
import { DEFAULT_MAILBOX } from './mailbox.js';
import { ActorRef, type AskOptions, type RefResolver, type RefRouter } from './ref.js';
import type { Link, ToParent } from './host-protocol.js';
import type { HostEndpoint, HostSystem } from './host-system.js';
import type { ParentHost } from './hosts/parent-host.js';
import { ProcessHost } from './hosts/process-host.js';
import { ThreadHost } from './hosts/thread-host.js';
import { RemoteCell } from './remote-cell.js';

export const DEFAULT_ASK_TIMEOUT_MS = 5000;
export const DEFAULT_STOP_TIMEOUT_MS = 5000;

export interface SystemOptions {
  /** Round-trip every in-thread message through the codec to catch unserializable ones (also TROUPE_DEBUG_SERIALIZE=1). */
  debugSerialize?: boolean;
  /** The parent link leads to another node (a node agent): plain-data codec both ways. */
  parentCodec?: CodecProfile;
  /** A spawn on a node that is not joined (lost, not back yet) waits this long for it to (re)join; 0 fails at once. */
  nodeRejoinTimeoutMs?: number;
}

export type SystemEvent =
  | { type: 'started'; path: string; incarnation: string; placement: string }
  | { type: 'stopped'; path: string; incarnation: string; reason: StopReason }
  | { type: 'dead-letter'; to: string; why: string; envelope: Envelope }
  | { type: 'delivery-failed'; to: string; error: ErrorInfo };

/** Where an actor runs now. `id` is the thread id, the pid or the node name of its host. */
export type Placement =
  | { kind: 'local'; incarnation: string }
  | { kind: 'thread' | 'process' | 'node'; incarnation: string; id: number | string; terminate: () => Promise<unknown> };

interface PendingReply {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer?: NodeJS.Timeout;
}

export class ActorSystem implements RefResolver, HostSystem {
  readonly id: string;
  readonly debugSerialize: boolean;
  /** Lifecycle, dead letters and delivery failures, for logs, metrics and tests. */
  readonly events$ = new Subject<SystemEvent>();
  private readonly registry = new Map<string, Cell>();
  private readonly childSystems = new Map<string, ParentHost>();
  /** Joined nodes by name (see node/listener.ts). */
  private readonly nodes = new Map<string, ParentHost>();
  /** Envelopes for local paths whose actor is still being constructed. */
  private readonly spawning = new Map<string, Envelope[]>();
  private readonly pending = new Map<string, PendingReply>();
  private readonly router: RefRouter;
  private readonly toParent?: FrameBatcher;
  private readonly parentCodec: CodecProfile;
  private readonly nodeRejoinTimeoutMs: number;
  private readonly nodeWaiters = new Map<string, (() => void)[]>();

  /** `parent` is set in a child host (worker thread, child process, node agent): unknown paths go up to it. */
  constructor(options: SystemOptions = {}, private readonly parent?: Link, id?: string) {
    this.id = id ?? nanoid(10);
    this.debugSerialize = options.debugSerialize ?? process.env.TROUPE_DEBUG_SERIALIZE === '1';
    this.parentCodec = options.parentCodec ?? 'trusted';
    this.nodeRejoinTimeoutMs = options.nodeRejoinTimeoutMs ?? 0;
    if (parent) this.toParent = new FrameBatcher(parent, !('threadId' in parent), this.parentCodec);
    this.router = {
      tell: (path, message, from) => this.tell(path, message, from),
      send: (path, message) => this.send(path, message),
      ask: (path, build, options) => this.ask(path, build, options),
    };
  }

  refFor<M>(path: string): ActorRef<M> {
    return new ActorRef<M>(path, this.router);
  }

  // ---- spawning -----------------------------------------------------------

  async spawn<M>(path: string, spec: ActorSpec<M>): Promise<ActorRef<M>> {
    await this.spawnIncarnation(path, spec);
    return this.refFor<M>(path);
  }

  /** Spawns and returns the new incarnation's id (supervisors match death notices against it). */
  async spawnIncarnation<M>(path: string, spec: ActorSpec<M>): Promise<string> {
    checkActorPath(path);
    if (this.registry.has(path) || this.spawning.has(path)) throw new Error(`an actor already runs at ${path}; stop it first or pick another path`);
    const incarnation = nanoid(10);
    const placement = spec.placement ?? 'local';
    if (placement === 'local') {
      await this.spawnLocal(path, incarnation, spec, true);
    } else {
      if (typeof placement === 'object' && !this.nodes.has(placement.node)) await this.nodeRejoined(placement.node);
      const host = this.hostFor(path, placement);
      try {
        await host.spawnActor(path, incarnation, spec as ActorSpec<unknown>, (cell) => this.registry.set(path, cell));
      } catch (error) {
        if (placement === 'thread' || placement === 'process') void host.terminate();
        throw error;
      }
    }
    this.events$.next({ type: 'started', path, incarnation, placement: placementLabel(placement) });
    return incarnation;
  }

  /** In a child host: an actor the parent asked for (the parent already routes its path here). */
  async spawnHosted<M>(path: string, incarnation: string, spec: ActorSpec<M>): Promise<void> {
    await this.spawnLocal(path, incarnation, spec, false);
  }

  /** Registers a joined node so actors can be placed on it by name. */
  addNode(name: string, host: ParentHost): void {
    if (this.nodes.has(name)) throw new Error(`a node named "${name}" has already joined; give each node its own --name`);
    this.nodes.set(name, host);
    this.childSystems.set(host.childSystemId, host);
    for (const wake of this.nodeWaiters.get(name) ?? []) wake();
    this.nodeWaiters.delete(name);
  }

  /** Waits up to the rejoin timeout for a node of this name to join (hostFor reports it if it did not). */
  private async nodeRejoined(name: string): Promise<void> {
    if (this.nodeRejoinTimeoutMs <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const wake = () => { clearTimeout(timer); resolve(); };
      this.nodeWaiters.set(name, [...(this.nodeWaiters.get(name) ?? []), wake]);
      timer = setTimeout(() => {
        this.nodeWaiters.set(name, (this.nodeWaiters.get(name) ?? []).filter((w) => w !== wake));
        resolve();
      }, this.nodeRejoinTimeoutMs);
      timer.unref();
    });
  }

  nodeNames(): string[] {
    return [...this.nodes.keys()];
  }

  private hostFor(path: string, placement: Exclude<ActorSpec<unknown>['placement'], 'local' | undefined>): ParentHost {
    let host: ParentHost;
    if (placement === 'thread' || placement === 'process') {
      if (this.parent) throw new Error(`actor ${path}: only the root system places actors in new threads or processes; spawn it from there`);
      host = placement === 'thread' ? new ThreadHost(this) : new ProcessHost(this);
    } else if (typeof placement === 'object' && typeof placement.node === 'string') {
      const node = this.nodes.get(placement.node);
      if (!node) {
        const known = this.nodeNames();
        throw new Error(`actor ${path}: no node named "${placement.node}" has joined (joined: ${known.length ? known.join(', ') : 'none'}); ` +
          'start it with `troupe node --join HOST:PORT --token SECRET --name NAME`');
      }
      return node;
    } else {
      throw new TypeError(`actor ${path}: unknown placement ${JSON.stringify(placement)} (use "local", "thread", "process" or { node: NAME })`);
    }
    this.childSystems.set(host.childSystemId, host);
    return host;
  }

  private async spawnLocal<M>(path: string, incarnation: string, spec: ActorSpec<M>, announce: boolean): Promise<void> {
    this.spawning.set(path, []);
    let actor;
    try {
      actor = await instantiate(spec);
    } catch (error) {
      this.flushSpawning(path);
      throw error;
    }
    const cell = new LocalCell<M>(this, path, incarnation, actor, { ...DEFAULT_MAILBOX, ...spec.mailbox });
    this.registry.set(path, cell);
    if (announce) this.notifyParent({ t: 'register', path });
    this.flushSpawning(path);
    await cell.start();
  }

  /** Delivers what arrived while the actor at `path` was being constructed (or refuses it if that failed). */
  private flushSpawning(path: string): void {
    const queued = this.spawning.get(path) ?? [];
    this.spawning.delete(path);
    for (const envelope of queued) this.route(envelope, 'child');
  }

  /** Stops an actor gracefully; past the timeout it is killed. Resolves with why it stopped. */
  async stop(ref: ActorRef<unknown>, timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<StopReason> {
    const cell = this.registry.get(ref.path);
    if (!cell) {
      if (this.parent) return this.stopRemote(ref, timeoutMs);
      return { kind: 'noproc' };
    }
    cell.requestStop();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([cell.terminated, timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return outcome;
    cell.kill(`did not stop within ${timeoutMs} ms`);
    return cell.terminated;
  }

  kill(ref: ActorRef<unknown>, detail: string): void {
    this.registry.get(ref.path)?.kill(detail);
  }

  /** Resolves when the current incarnation at `ref` stops (immediately with `noproc` if none runs). */
  watch(ref: ActorRef<unknown>): Promise<StopReason> {
    const { path, promise } = this.expectReply<StopReason>();
    this.route({ k: 'watch', to: ref.path, watcher: path });
    return promise;
  }

  async inspect(ref: ActorRef<unknown>, timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<ActorStats> {
    const { path, promise } = this.expectReply<ActorStats>(timeoutMs, ref.path);
    this.route({ k: 'inspect', to: ref.path, replyTo: path });
    return promise;
  }

  /** Where an actor runs; for a worker thread, a handle to terminate it from outside (tests, operators). */
  placementOf(ref: ActorRef<unknown>): Placement | undefined {
    const cell = this.registry.get(ref.path);
    if (cell instanceof RemoteCell) {
      const host = cell.host;
      return { kind: host.kind, incarnation: cell.incarnation, id: host.id, terminate: () => host.terminate() };
    }
    return cell ? { kind: 'local', incarnation: cell.incarnation } : undefined;
  }

  /** Stops every top-level actor, newest first. */
  async shutdown(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    const tops = [...this.registry.keys()].filter((path) => !path.includes('/') || !this.registry.has(path.slice(0, path.lastIndexOf('/'))));
    for (const path of tops.reverse()) await this.stop(this.refFor(path), timeoutMs);
    for (const [, reply] of this.pending) {
      clearTimeout(reply.timer);
      reply.reject(new ActorStoppedError('(system)', 'the actor system shut down'));
    }
    this.pending.clear();
  }

  // ---- sending ------------------------------------------------------------

  tell(path: string, message: unknown, from?: string): void {
    this.route({ k: 'msg', to: path, body: message, ...(from ? { from } : {}) }, 'self');
  }

  send(path: string, message: unknown): Promise<void> {
    const reply = this.expectReply<void>(DEFAULT_ASK_TIMEOUT_MS, path);
    try {
      this.route({ k: 'msg', to: path, body: message, ack: reply.path }, 'self');
    } catch (error) {
      reply.cancel();
      return Promise.reject(error);
    }
    return reply.promise;
  }

  ask<R>(path: string, build: (replyTo: ActorRef<R>) => unknown, options: AskOptions = {}): Promise<R> {
    const reply = this.expectReply<R>(options.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS, path);
    try {
      const message = build(this.refFor<R>(reply.path));
      this.route({ k: 'msg', to: path, body: message, ask: reply.path }, 'self');
    } catch (error) {
      reply.cancel();
      return Promise.reject(error);
    }
    return reply.promise;
  }

  // ---- routing ------------------------------------------------------------

  /**
   * Delivers or forwards an envelope. `origin` says where it came from:
   * 'self' (sent in this thread: the debug codec check applies), 'parent' or
   * 'child' (decoded from another thread; a worker never bounces an envelope
   * from its parent back up).
   */
  route(envelope: Envelope, origin: 'self' | 'parent' | 'child' = 'self'): void {
    const cell = this.registry.get(envelope.to);
    if (!cell) {
      const queue = this.spawning.get(envelope.to);
      if (queue) return void queue.push(envelope);
    }
    if (cell) {
      if (origin === 'self' && envelope.k === 'msg' && this.debugSerialize) {
        if (cell instanceof LocalCell) envelope = { ...envelope, body: roundTrip(envelope.body, this) };
        else assertSerializable(envelope.body);
      }
      cell.deliver(envelope);
      return;
    }
    const askSystem = askSystemOf(envelope.to);
    if (askSystem === this.id) return this.settle(envelope);
    const child = askSystem ? this.childSystems.get(askSystem) : undefined;
    if (child) return child.post(envelope);
    if (this.parent && origin !== 'parent') return this.postToParent(envelope);
    this.undeliverable(envelope);
  }

  /** Routes an envelope that arrived from the parent; a frame that fails to decode is logged and dropped. */
  routeFrame(frame: Frame, origin: 'parent' | 'child'): void {
    let envelope: Envelope;
    try {
      envelope = decodeFrame(frame, this, origin === 'parent' ? this.parentCodec : 'trusted') as Envelope;
    } catch (error) {
      console.error(`[troupe] dropped a frame from the ${origin} thread that failed to decode: ${(error as Error).message}`);
      return;
    }
    this.route(envelope, origin);
  }

  /** A message the target could not accept: its ask / ack / sender learns why. */
  refuse(envelope: Extract<Envelope, { k: 'msg' }>, error: Error): void {
    const info = { ...toErrorInfo(error), ...ownFields(error) };
    const to = envelope.ask ?? envelope.ack ?? envelope.from;
    if (to) this.route({ k: 'fail', to, target: envelope.to, error: info });
    if (!envelope.ask && !envelope.ack) this.events$.next({ type: 'delivery-failed', to: envelope.to, error: info });
  }

  deadLetter(envelope: Envelope, why: string): void {
    this.events$.next({ type: 'dead-letter', to: envelope.to, why, envelope });
  }

  // ---- bookkeeping called by cells -----------------------------------------

  unregister(path: string, cell: Cell): void {
    if (this.registry.get(path) !== cell) return;
    this.registry.delete(path);
    if (cell instanceof LocalCell) this.notifyParent({ t: 'unregister', path });
  }

  registerForwarded(path: string, host: HostEndpoint): void {
    if (!this.registry.has(path)) this.registry.set(path, new ForwardedCell(path, host));
  }

  unregisterForwarded(path: string, host: HostEndpoint): void {
    const cell = this.registry.get(path);
    if (cell instanceof ForwardedCell && cell.host === host) this.registry.delete(path);
  }

  /** A child host is gone: forget its system id, its forwarded paths, and its node name. */
  forgetHost(host: HostEndpoint): void {
    if (this.childSystems.get(host.childSystemId) === host) this.childSystems.delete(host.childSystemId);
    for (const [name, node] of this.nodes) if (node === host) this.nodes.delete(name);
    for (const [path, cell] of this.registry) {
      if (cell instanceof ForwardedCell && cell.host === host) this.registry.delete(path);
    }
  }

  reportStopped(path: string, incarnation: string, reason: StopReason): void {
    this.events$.next({ type: 'stopped', path, incarnation, reason });
  }

  // ---- internals ------------------------------------------------------------

  private undeliverable(envelope: Envelope): void {
    switch (envelope.k) {
      case 'msg':
        this.refuse(envelope, new ActorStoppedError(envelope.to));
        break;
      case 'watch':
        this.route({ k: 'terminated', to: envelope.watcher, target: envelope.to, incarnation: '', reason: { kind: 'noproc' } });
        return;
      case 'inspect':
        this.route({ k: 'fail', to: envelope.replyTo, target: envelope.to, error: toErrorInfo(new ActorStoppedError(envelope.to)) });
        return;
    }
    this.deadLetter(envelope, 'no actor at that path');
  }

  private settle(envelope: Envelope): void {
    const id = envelope.to;
    const reply = this.pending.get(id);
    if (!reply) return; // a late reply after a timeout: ignored
    this.pending.delete(id);
    clearTimeout(reply.timer);
    if (envelope.k === 'msg') reply.resolve(envelope.body);
    else if (envelope.k === 'terminated') reply.resolve(envelope.reason);
    else if (envelope.k === 'fail') reply.reject(reviveError(envelope.error));
  }

  /** A one-shot reply path with its promise; with a timeout, a silent target rejects with AskTimeoutError. */
  private expectReply<R>(timeoutMs?: number, target = '') {
    const correlationId = nanoid();
    const path = askPath(this.id, correlationId);
    let cancel = () => {};
    const promise = new Promise<R>((resolve, reject) => {
      const reply: PendingReply = { resolve: resolve as (value: unknown) => void, reject };
      if (timeoutMs !== undefined) {
        reply.timer = setTimeout(() => {
          this.pending.delete(path);
          reject(new AskTimeoutError(target, timeoutMs, correlationId));
        }, timeoutMs);
      }
      this.pending.set(path, reply);
      cancel = () => {
        clearTimeout(reply.timer);
        this.pending.delete(path);
      };
    });
    return { path, promise, cancel: () => cancel() };
  }

  private async stopRemote(ref: ActorRef<unknown>, timeoutMs: number): Promise<StopReason> {
    const { path, promise } = this.expectReply<StopReason>(timeoutMs, ref.path);
    this.route({ k: 'watch', to: ref.path, watcher: path });
    this.route({ k: 'stop', to: ref.path });
    return promise;
  }

  private postToParent(envelope: Envelope): void {
    this.toParent!.push(envelope);
  }

  /** Control messages to the parent thread; they flush pending envelopes first, so order is kept. */
  notifyParent(message: ToParent): void {
    this.toParent?.control(message);
  }
}

/**
 * A path an actor spawned inside a child host (not one the parent placed
 * there), reached through that host. Its lifecycle is the child's business;
 * watches and stops are forwarded.
 */
class ForwardedCell implements Cell {
  readonly incarnation = '';
  readonly terminated = new Promise<StopReason>(() => {});
  constructor(readonly path: string, readonly host: HostEndpoint) {}
  deliver(envelope: Envelope): void {
    this.host.post(envelope);
  }
  requestStop(): void {
    this.host.post({ k: 'stop', to: this.path });
  }
  kill(): void {
    this.requestStop();
  }
}

function ownFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    const value = (error as unknown as Record<string, unknown>)[key];
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) fields[key] = value;
  }
  return fields;
}
