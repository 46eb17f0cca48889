// ThreadCell: the main thread's proxy for an actor hosted by a worker thread.
//
// The worker runs its own ActorSystem whose LocalCell holds the actor (and its
// bounded mailbox). This proxy stays in the parent's registry at the actor's
// path: it posts envelopes to the worker as msgpack frames with binary
// payloads in the transfer list, keeps the death-watch list (so watchers are
// told even when the thread dies abruptly), and turns the worker's exit into
// a `killed` stop reason when the actor did not report its own end.
import { Worker } from 'node:worker_threads';
import type { ActorSpec, StopReason } from './actor.js';
import type { Cell } from './cell.js';
import type { Envelope } from './envelope.js';
import { FrameBatcher } from './frame-batcher.js';
import { toErrorInfo, type ErrorInfo } from './errors.js';
import type { ActorSystem } from './system.js';
import type { ToParent, ToWorker, WorkerBoot } from './thread-protocol.js';

const WORKER_MAIN = new URL('./worker-main.js', import.meta.url);

export class ThreadCell implements Cell {
  readonly terminated: Promise<StopReason>;
  private resolveTerminated!: (reason: StopReason) => void;
  private readonly watchers = new Set<string>();
  private stopped = false;
  private startSettled = false;
  private rejectStart?: (error: Error) => void;
  private readonly outbox: FrameBatcher;

  private constructor(
    private readonly system: ActorSystem,
    readonly path: string,
    readonly incarnation: string,
    readonly childSystemId: string,
    readonly worker: Worker,
  ) {
    this.terminated = new Promise((resolve) => (this.resolveTerminated = resolve));
    this.outbox = new FrameBatcher(worker);
  }

  get threadId(): number {
    return this.worker.threadId;
  }

  /**
   * Starts the worker; resolves once the actor's preStart completed there.
   * `register` is called before the worker exists, so messages sent meanwhile
   * queue on the worker's port instead of being lost.
   */
  static async start(system: ActorSystem, path: string, incarnation: string, childSystemId: string,
    spec: ActorSpec<unknown>, register: (cell: ThreadCell) => void): Promise<ThreadCell> {
    if (!spec.module || !spec.export) {
      throw new TypeError(`actor ${path}: placement "thread" needs a module URL and an export name, not a factory`);
    }
    const boot: WorkerBoot = {
      path,
      incarnation,
      systemId: childSystemId,
      spec: { module: spec.module, export: spec.export, args: spec.args ?? [], mailbox: spec.mailbox ?? {} },
      debugSerialize: system.debugSerialize,
    };
    const worker = new Worker(WORKER_MAIN, { workerData: boot });
    const cell = new ThreadCell(system, path, incarnation, childSystemId, worker);
    register(cell);
    await new Promise<void>((resolve, reject) => {
      cell.rejectStart = reject;
      worker.on('message', (message: ToParent) => {
        if (message.t === 'started') {
          cell.startSettled = true;
          resolve();
        } else {
          cell.onMessage(message);
        }
      });
      worker.on('error', (error) => cell.onCrash(error));
      worker.on('exit', (code) => cell.onExit(code));
    });
    return cell;
  }

  deliver(envelope: Envelope): void {
    switch (envelope.k) {
      case 'watch':
        if (!this.stopped) this.watchers.add(envelope.watcher);
        return;
      case 'unwatch':
        this.watchers.delete(envelope.watcher);
        return;
      case 'stop':
        return this.requestStop();
      default:
        this.post(envelope);
    }
  }

  /** Forwards an envelope for a path that the worker hosts (its own actor or one it spawned). */
  post(envelope: Envelope): void {
    this.outbox.push(envelope);
  }

  requestStop(): void {
    if (this.stopped) return;
    const message: ToWorker = { t: 'stop' };
    this.outbox.control(message);
  }

  kill(detail: string): void {
    if (this.stopped) return;
    this.finish({ kind: 'killed', detail });
    void this.worker.terminate();
  }

  private onMessage(message: ToParent): void {
    switch (message.t) {
      case 'env':
        for (const frame of message.frames) this.system.routeFrame(frame, 'child');
        return;
      case 'start-failed':
        this.failStart(message.error);
        return;
      case 'stopped':
        this.finish(message.reason);
        void this.worker.terminate();
        return;
      case 'register':
        this.system.registerForwarded(message.path, this);
        return;
      case 'unregister':
        this.system.unregisterForwarded(message.path, this);
        return;
    }
  }

  private onCrash(error: Error): void {
    if (!this.startSettled) return this.failStart(toErrorInfo(error));
    this.finish({ kind: 'failure', error: toErrorInfo(error) });
  }

  private onExit(code: number): void {
    if (!this.startSettled) return this.failStart({ name: 'Error', message: `worker thread exited with code ${code} while starting` });
    this.finish({ kind: 'killed', detail: `worker thread ${this.worker.threadId} exited with code ${code}` });
  }

  private failStart(error: ErrorInfo): void {
    if (this.startSettled) return;
    this.startSettled = true;
    const reason: StopReason = { kind: 'failure', error };
    this.finish(reason);
    void this.worker.terminate();
    const startError = new Error(`actor ${this.path} failed to start in a worker thread: ${error.message}`);
    this.rejectStart?.(startError);
  }

  private finish(reason: StopReason): void {
    if (this.stopped) return;
    this.stopped = true;
    this.system.unregister(this.path, this);
    this.system.forgetChildSystem(this.childSystemId, this);
    for (const watcher of this.watchers) {
      this.system.route({ k: 'terminated', to: watcher, target: this.path, incarnation: this.incarnation, reason });
    }
    this.watchers.clear();
    this.system.reportStopped(this.path, this.incarnation, reason);
    this.resolveTerminated(reason);
  }
}
