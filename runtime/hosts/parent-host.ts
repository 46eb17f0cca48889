// The parent side of a link to a child host. Subclasses say how the host is
// started and ended (worker thread, child process, node connection); this
// class speaks the host protocol: it spawns actors there, forwards envelopes,
// and turns the host's reports and its loss into stop reasons.
import type { ActorSpec } from '../actor.js';
import { decodeFrame, type CodecProfile, type Frame } from '../codec.js';
import { FrameBatcher } from '../frame-batcher.js';
import type { Envelope } from '../envelope.js';
import type { ErrorInfo } from '../errors.js';
import type { HostedActorBoot, Link, ToChild, ToParent } from '../host-protocol.js';
import type { HostEndpoint, HostSystem } from '../host-system.js';
import { remoteActorName } from '../node/actor-registry.js';
import { RemoteCell } from '../remote-cell.js';

export type HostKind = 'thread' | 'process' | 'node';

export abstract class ParentHost implements HostEndpoint {
  abstract readonly kind: HostKind;
  /** threadId, pid, or node name. */
  abstract readonly id: number | string;
  protected readonly cells = new Map<string, RemoteCell>();
  private readonly starting = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  private outbox!: FrameBatcher;
  private lostReason: string | null = null;

  constructor(protected readonly system: HostSystem, readonly childSystemId: string) {}

  /** How this link's bytes are encoded and decoded: a node is a peer. */
  get codec(): CodecProfile {
    return this.kind === 'node' ? 'peer' : 'trusted';
  }

  /** Call once the link exists. */
  protected attach(link: Link): void {
    this.outbox = new FrameBatcher(link, this.kind !== 'thread', this.codec);
  }

  /** Ends the host (terminate the thread, kill the process, drop the connection). */
  abstract terminate(): Promise<unknown>;

  /** Spawns an actor on this host; resolves once its preStart completed there. */
  async spawnActor(path: string, incarnation: string, spec: ActorSpec<unknown>, register: (cell: RemoteCell) => void): Promise<RemoteCell> {
    if (!spec.module || !spec.export) {
      throw new TypeError(`actor ${path}: placement "${this.kind}" needs a module URL and an export name, not a factory`);
    }
    if (this.lostReason) throw new Error(`cannot spawn ${path} on ${this.describe()}: ${this.lostReason}`);
    const common = { args: spec.args ?? [], mailbox: spec.mailbox ?? {} };
    let boot: HostedActorBoot;
    if (this.kind === 'node') {
      const actor = remoteActorName(spec.module, spec.export);
      if (!actor) throw new TypeError(`actor ${path}: ${spec.module}#${spec.export} is not in the registry of actors a node may run (runtime/node/actor-registry.ts)`);
      boot = { path, incarnation, spec: { actor, ...common } };
    } else {
      boot = { path, incarnation, spec: { module: spec.module, export: spec.export, ...common } };
    }
    const cell = new RemoteCell(this.system, path, incarnation, this);
    this.cells.set(path, cell);
    register(cell); // before the spawn message: messages sent meanwhile queue behind it
    const started = new Promise<void>((resolve, reject) => this.starting.set(path, { resolve, reject }));
    this.control({ t: 'spawn', boot });
    await started;
    return cell;
  }

  post(envelope: Envelope): void {
    if (!this.lostReason) this.outbox.push(envelope);
  }

  control(message: ToChild): void {
    if (!this.lostReason) this.outbox.control(message);
  }

  /** Whether an actor is being started there (its preStart may keep that host busy). */
  protected get startsPending(): boolean {
    return this.starting.size > 0;
  }

  /** A cell here was killed from this side: single-actor hosts end with it. */
  killed(_cell: RemoteCell): void {
    if (this.kind !== 'node') void this.terminate();
  }

  describe(): string {
    return `${this.kind} ${this.id}`;
  }

  protected onMessage(message: ToParent): void {
    switch (message.t) {
      case 'env':
        for (const frame of message.frames) this.routeFrame(frame);
        return;
      case 'started':
        this.settleStart(message.path);
        return;
      case 'start-failed':
        this.failStart(message.path, message.error);
        return;
      case 'stopped':
        this.cells.get(message.path)?.finish(message.reason);
        this.cells.delete(message.path);
        this.afterStopped();
        return;
      case 'register':
        this.system.registerForwarded(message.path, this);
        return;
      case 'unregister':
        this.system.unregisterForwarded(message.path, this);
        return;
      case 'ping':
        return;
    }
  }

  /** Routes one envelope from the host; a frame that fails to decode is logged and dropped. */
  protected routeFrame(frame: Frame): void {
    let envelope: Envelope;
    try {
      envelope = decodeFrame(frame, this.system, this.codec) as Envelope;
    } catch (error) {
      console.error(`[troupe] dropped a frame from ${this.describe()} that failed to decode: ${(error as Error).message}`);
      return;
    }
    this.routeEnvelope(envelope);
  }

  protected routeEnvelope(envelope: Envelope): void {
    this.system.route(envelope, 'child');
  }

  /** The host is gone (exit, crash, lost connection): every actor it held was killed. */
  protected lost(detail: string): void {
    if (this.lostReason) return;
    this.lostReason = detail;
    for (const path of [...this.starting.keys()]) this.failStart(path, { name: 'Error', message: detail });
    for (const cell of this.cells.values()) cell.finish({ kind: 'killed', detail });
    this.cells.clear();
    this.system.forgetHost(this);
  }

  /** Single-actor hosts end once their actor has stopped. */
  protected afterStopped(): void {}

  private settleStart(path: string): void {
    this.starting.get(path)?.resolve();
    this.starting.delete(path);
  }

  private failStart(path: string, error: ErrorInfo): void {
    const pending = this.starting.get(path);
    this.starting.delete(path);
    this.cells.get(path)?.finish({ kind: 'failure', error });
    this.cells.delete(path);
    pending?.reject(new Error(`actor ${path} failed to start on ${this.describe()}: ${error.message}`));
    this.afterStopped();
  }
}
