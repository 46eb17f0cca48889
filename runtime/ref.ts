// ActorRef: the address of an actor plus the ways to reach it. It behaves the
// same whether the actor runs in this thread or in another one: every send
// goes through the owning system's router, which delivers locally or posts
// the envelope to the thread that hosts the path.
//
// A ref names a path, and a path outlives restarts: a supervisor restarts a
// child at the same path, so refs handed out before a restart stay valid.

export interface AskOptions {
  timeoutMs?: number;
}

/** What an ActorRef needs from the system that owns it. */
export interface RefRouter {
  tell(path: string, message: unknown, from?: string): void;
  send(path: string, message: unknown): Promise<void>;
  ask<R>(path: string, build: (replyTo: ActorRef<R>) => unknown, options?: AskOptions): Promise<R>;
}

export interface RefResolver {
  refFor<M>(path: string): ActorRef<M>;
}

const UNBOUND: RefRouter = {
  tell(path) {
    throw new Error(`ActorRef ${path} is not bound to an actor system`);
  },
  send(path) {
    return Promise.reject(new Error(`ActorRef ${path} is not bound to an actor system`));
  },
  ask(path) {
    return Promise.reject(new Error(`ActorRef ${path} is not bound to an actor system`));
  },
};

export class ActorRef<M> {
  /** Phantom field so ActorRef<A> and ActorRef<B> are distinct types (covariant: any ref is an ActorRef<unknown>). */
  declare readonly __message?: M;

  constructor(
    readonly path: string,
    private readonly router: RefRouter,
  ) {}

  static unbound<M>(path: string): ActorRef<M> {
    return new ActorRef<M>(path, UNBOUND);
  }

  /**
   * Fire and forget. If the mailbox refuses the message (full, or no actor
   * there), a sending actor gets a `delivery-failed` signal and the system
   * publishes the failure on `deliveryFailures$`.
   */
  tell(message: M, sender?: ActorRef<unknown>): void {
    this.router.tell(this.path, message, sender?.path);
  }

  /** Acknowledged send: resolves once the mailbox accepted the message, rejects with MailboxFullError / ActorStoppedError. */
  send(message: M): Promise<void> {
    return this.router.send(this.path, message);
  }

  /**
   * Request / reply. `build` receives a one-shot reply address (its path holds
   * a nanoid correlation id) and returns the message to send; the promise
   * settles with the first reply, or rejects on timeout, refusal or stop.
   */
  ask<R>(build: (replyTo: ActorRef<R>) => M, options?: AskOptions): Promise<R> {
    return this.router.ask(this.path, build as (replyTo: ActorRef<R>) => unknown, options);
  }

  equals(other: ActorRef<unknown>): boolean {
    return other.path === this.path;
  }

  toString(): string {
    return `ActorRef(${this.path})`;
  }

  toJSON(): string {
    return this.path;
  }
}
