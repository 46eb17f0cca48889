// What an actor is: one typed message union, processed one message at a time.
import type { ActorRef } from './ref.js';
import type { ErrorInfo } from './errors.js';
import type { MailboxOptions, MailboxStats } from './mailbox.js';
import type { ActorSystem } from './system.js';

/** Why an incarnation of an actor stopped. */
export type StopReason =
  | { kind: 'normal' } // stopped itself, or was stopped
  | { kind: 'failure'; error: ErrorInfo } // threw from a handler, or failed to start
  | { kind: 'killed'; detail: string } // its thread died, or it ignored a stop past its timeout
  | { kind: 'noproc' }; // nothing ran at that path when the watch was set

/** Signals are delivered apart from the message union, ahead of queued messages. */
export type Signal =
  | { type: 'terminated'; ref: ActorRef<unknown>; incarnation: string; reason: StopReason }
  | { type: 'delivery-failed'; to: ActorRef<unknown>; error: ErrorInfo };

export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly system: ActorSystem;
  /** Unique per incarnation: a restart at the same path gets a new one. */
  readonly incarnation: string;
  /** Messages waiting in this actor's mailbox (not counting the one being handled). */
  readonly mailbox: MailboxStats;
  /** Tells `to`, naming this actor as sender so a refusal comes back as a `delivery-failed` signal. */
  tell<T>(to: ActorRef<T>, message: T): void;
  /** Death watch: a `terminated` signal arrives when the watched incarnation stops, with why. */
  watch(ref: ActorRef<unknown>): void;
  unwatch(ref: ActorRef<unknown>): void;
  /** Spawns a child at `<self>/<name>`; children are stopped (in reverse order) before their parent. */
  spawn<C>(name: string, spec: ActorSpec<C>): Promise<ActorRef<C>>;
  /** Stops this actor after the current message. */
  stop(): void;
}

export abstract class Actor<M> {
  /** Set by the runtime before preStart. */
  context!: ActorContext<M>;

  preStart(): void | Promise<void> {}
  abstract receive(message: M): void | Promise<void>;
  onSignal(signal: Signal): void | Promise<void> {
    if (signal.type === 'delivery-failed') {
      console.warn(`[troupe] ${this.context.self.path}: delivery to ${signal.to.path} failed: ${signal.error.message}`);
    }
  }
  postStop(_reason: StopReason): void | Promise<void> {}
  /**
   * Optional: a message this actor takes the moment it is delivered, outside
   * the one-at-a-time order, even while a handler runs (true: taken, not
   * queued). For data a running handler waits for (a tensor group's vectors
   * over a node link); it must be quick and must not throw.
   */
  receiveAtDelivery?(message: M): boolean;
  /** Optional: a stop was requested, perhaps while a handler runs; release whatever that handler waits on. */
  onStopRequested?(): void;
}

/**
 * Where an actor runs: in this thread, in a new worker thread, in a new child
 * process, or on a joined node (by name).
 */
export type Placement = 'local' | 'thread' | 'process' | { node: string };

export function placementLabel(placement: Placement): string {
  return typeof placement === 'string' ? placement : `node:${placement.node}`;
}

/**
 * How to make an actor. A factory works for `local` placement only; a module
 * URL plus export name works everywhere (the hosting thread imports it).
 * The export is either an Actor subclass or a function returning an Actor;
 * it is called with `args`.
 */
export interface ActorSpec<M> {
  placement?: Placement;
  factory?: () => Actor<M>;
  module?: string;
  export?: string;
  args?: unknown[];
  mailbox?: Partial<MailboxOptions>;
}

/** A typed spec for an actor defined in a module (works in every placement). */
export function moduleActor<M>(module: string | URL, exportName: string, args: unknown[] = [], options: Omit<ActorSpec<M>, 'module' | 'export' | 'args' | 'factory'> = {}): ActorSpec<M> {
  return { ...options, module: module.toString(), export: exportName, args };
}

export async function instantiate<M>(spec: ActorSpec<M>): Promise<Actor<M>> {
  if (spec.factory) return spec.factory();
  if (!spec.module || !spec.export) {
    throw new TypeError('an ActorSpec needs either a factory or a module URL and an export name');
  }
  const loaded = (await import(spec.module)) as Record<string, unknown>;
  const exported = loaded[spec.export];
  if (typeof exported !== 'function') {
    throw new TypeError(`module ${spec.module} has no exported actor "${spec.export}"`);
  }
  const args = spec.args ?? [];
  const made = exported.prototype instanceof Object && isActorClass(exported)
    ? new (exported as new (...a: unknown[]) => Actor<M>)(...args)
    : (exported as (...a: unknown[]) => Actor<M>)(...args);
  if (!made || typeof (made as Actor<M>).receive !== 'function') {
    throw new TypeError(`export "${spec.export}" of ${spec.module} did not produce an Actor`);
  }
  return made;
}

function isActorClass(candidate: Function): boolean {
  for (let proto = candidate.prototype; proto; proto = Object.getPrototypeOf(proto)) {
    if (proto === Actor.prototype) return true;
  }
  return false;
}
