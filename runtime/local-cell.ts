// LocalCell: an actor running in this thread, with its bounded mailbox.
//
// Messages are handled one at a time. A handler may be async: the next message
// waits for its promise (an actor's receiveAtDelivery may take some messages
// as they arrive instead: data a running handler waits for). Signals (terminated, delivery-failed) sit in their own
// unbounded queue and go ahead of queued messages, so a full mailbox never
// loses a death notice. Up to BATCH messages run per macrotask, then the cell
// yields to the event loop (setImmediate) so I/O is never starved.
import { threadId } from 'node:worker_threads';
import type { Actor, ActorContext, ActorSpec, Signal, StopReason } from './actor.js';
import type { ActorStats, Cell } from './cell.js';
import type { Envelope } from './envelope.js';
import { ActorStoppedError, MailboxFullError, toErrorInfo } from './errors.js';
import { BoundedMailbox, type MailboxOptions } from './mailbox.js';
import type { ActorRef } from './ref.js';
import type { ActorSystem } from './system.js';

const BATCH = 64;

type MessageEnvelope = Extract<Envelope, { k: 'msg' }>;
type State = 'starting' | 'running' | 'stopping' | 'stopped';

export class LocalCell<M> implements Cell {
  readonly terminated: Promise<StopReason>;
  private resolveTerminated!: (reason: StopReason) => void;
  private readonly mailbox: BoundedMailbox<MessageEnvelope>;
  private readonly signals: Signal[] = [];
  private readonly watchers = new Set<string>();
  private readonly children: string[] = [];
  private state: State = 'starting';
  private scheduled = false;
  private busy = false;
  private stopRequested = false;
  private processed = 0;

  constructor(
    private readonly system: ActorSystem,
    readonly path: string,
    readonly incarnation: string,
    private readonly actor: Actor<M>,
    mailbox: MailboxOptions,
  ) {
    this.mailbox = new BoundedMailbox(mailbox);
    this.terminated = new Promise((resolve) => (this.resolveTerminated = resolve));
    actor.context = this.makeContext();
  }

  /** Runs preStart; a throw there stops the cell with a failure and is rethrown to the spawner. */
  async start(): Promise<void> {
    try {
      await this.actor.preStart();
    } catch (error) {
      await this.finish({ kind: 'failure', error: toErrorInfo(error) }, false);
      throw error;
    }
    if (this.state !== 'starting') return; // stopped or killed during preStart
    this.state = 'running';
    this.schedule();
  }

  deliver(envelope: Envelope): void {
    switch (envelope.k) {
      case 'msg':
        return this.enqueue(envelope);
      case 'watch':
        if (this.state === 'stopped') return; // the router answers for stopped cells
        this.watchers.add(envelope.watcher);
        return;
      case 'unwatch':
        this.watchers.delete(envelope.watcher);
        return;
      case 'stop':
        return this.requestStop();
      case 'inspect':
        this.system.route({ k: 'msg', to: envelope.replyTo, body: this.stats() });
        return;
      case 'terminated':
        return this.signal({
          type: 'terminated',
          ref: this.system.refFor(envelope.target),
          incarnation: envelope.incarnation,
          reason: envelope.reason,
        });
      case 'fail':
        return this.signal({ type: 'delivery-failed', to: this.system.refFor(envelope.target), error: envelope.error });
    }
  }

  requestStop(): void {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.stopRequested = true;
    this.releaseWaits();
    if (this.state === 'starting') return; // start() sees it after preStart
    if (!this.busy) void this.finish({ kind: 'normal' }, true);
  }

  kill(detail: string): void {
    if (this.state === 'stopped') return;
    this.releaseWaits();
    if (this.state === 'stopping') {
      // a graceful stop is stuck (in postStop, or in a child's stop): cut it short
      this.killChildren(detail);
      this.finalize({ kind: 'killed', detail });
      return;
    }
    void this.finish({ kind: 'killed', detail }, false);
  }

  stats(): ActorStats {
    return {
      path: this.path,
      incarnation: this.incarnation,
      placement: 'local',
      threadId,
      mailbox: this.mailbox.stats(),
      processed: this.processed,
    };
  }

  private enqueue(envelope: MessageEnvelope): void {
    if (this.state === 'stopped' || this.state === 'stopping' || this.stopRequested) {
      this.system.refuse(envelope, new ActorStoppedError(this.path, 'the actor is stopping'));
      return;
    }
    if (this.actor.receiveAtDelivery && this.takeAtDelivery(envelope)) return;
    const result = this.mailbox.offer(envelope);
    if (!result.accepted) {
      this.system.refuse(envelope, new MailboxFullError(this.path, this.mailbox.options.capacity));
      return;
    }
    if (envelope.ack) this.system.route({ k: 'msg', to: envelope.ack, body: undefined });
    if (result.dropped) this.system.deadLetter(result.dropped, 'dropped (mailbox full, overflow policy drop-oldest)');
    this.schedule();
  }

  /** Actor.onStopRequested: a handler still running learns it should end. */
  private releaseWaits(): void {
    try {
      this.actor.onStopRequested?.();
    } catch (error) {
      console.warn(`[troupe] ${this.path}: onStopRequested threw: ${(error as Error).message}`);
    }
  }

  /** Actor.receiveAtDelivery: a throw there fails the actor, as a throw from a handler does. */
  private takeAtDelivery(envelope: MessageEnvelope): boolean {
    let taken: boolean;
    try {
      taken = this.actor.receiveAtDelivery!(envelope.body as M);
    } catch (error) {
      void this.finish({ kind: 'failure', error: toErrorInfo(error) }, true);
      return true;
    }
    if (!taken) return false;
    this.processed++;
    if (envelope.ack) this.system.route({ k: 'msg', to: envelope.ack, body: undefined });
    return true;
  }

  private signal(signal: Signal): void {
    if (this.state === 'stopped') return;
    this.signals.push(signal);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.busy || this.state !== 'running') return;
    this.scheduled = true;
    setImmediate(() => void this.run());
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    if (this.busy || this.state !== 'running') return;
    this.busy = true;
    let failure: unknown;
    let failed = false;
    try {
      for (let n = 0; n < BATCH && !this.stopRequested && this.state === 'running'; n++) {
        const signal = this.signals.shift();
        const pending = signal ? this.actor.onSignal(signal) : this.handleNext();
        if (pending === null) break; // mailbox empty
        if (pending) await pending;
      }
    } catch (error) {
      failure = error;
      failed = true;
    }
    this.busy = false;
    if (this.state !== 'running') return; // killed while a handler ran
    if (failed) return void this.finish({ kind: 'failure', error: toErrorInfo(failure) }, true);
    if (this.stopRequested) return void this.finish({ kind: 'normal' }, true);
    if (this.signals.length > 0 || this.mailbox.depth > 0) this.schedule();
  }

  /** Handles one message; null when the mailbox is empty. */
  private handleNext(): void | Promise<void> | null {
    const envelope = this.mailbox.shift();
    if (!envelope) return null;
    this.processed++;
    return this.actor.receive(envelope.body as M);
  }

  /**
   * The way out. Children stop first (reverse order), then postStop (graceful
   * ends only), then finalize(). A kill during a stuck graceful stop calls
   * finalize() itself; whichever comes first wins.
   */
  private async finish(reason: StopReason, graceful: boolean): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.system.unregister(this.path, this);
    if (graceful) {
      for (const child of [...this.children].reverse()) await this.system.stop(this.system.refFor(child));
      try {
        await this.actor.postStop(reason);
      } catch (error) {
        console.warn(`[troupe] ${this.path}: postStop threw: ${(error as Error).message}`);
      }
    } else {
      this.killChildren(`parent ${this.path} stopped`);
    }
    this.finalize(reason);
  }

  private killChildren(detail: string): void {
    for (const child of [...this.children].reverse()) this.system.kill(this.system.refFor(child), detail);
  }

  /** Queued messages are refused to their senders, then watchers are told. Runs once. */
  private finalize(reason: StopReason): void {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.system.unregister(this.path, this);
    const refusal = new ActorStoppedError(this.path, 'the actor stopped before handling it');
    for (const envelope of this.mailbox.drain()) this.system.refuse(envelope, refusal);
    this.signals.length = 0;
    for (const watcher of this.watchers) {
      this.system.route({ k: 'terminated', to: watcher, target: this.path, incarnation: this.incarnation, reason });
    }
    this.watchers.clear();
    this.system.reportStopped(this.path, this.incarnation, reason);
    this.resolveTerminated(reason);
  }

  private makeContext(): ActorContext<M> {
    const cell = this;
    const system = this.system;
    const self = system.refFor<M>(this.path);
    return {
      self,
      system,
      incarnation: this.incarnation,
      get mailbox() {
        return cell.mailbox.stats();
      },
      tell<T>(to: ActorRef<T>, message: T) {
        system.tell(to.path, message, cell.path);
      },
      watch(ref: ActorRef<unknown>) {
        system.route({ k: 'watch', to: ref.path, watcher: cell.path });
      },
      unwatch(ref: ActorRef<unknown>) {
        system.route({ k: 'unwatch', to: ref.path, watcher: cell.path });
      },
      async spawn<C>(name: string, spec: ActorSpec<C>) {
        const child = await system.spawn<C>(`${cell.path}/${name}`, spec);
        cell.children.push(child.path);
        return child;
      },
      stop() {
        cell.requestStop();
      },
    };
  }
}
