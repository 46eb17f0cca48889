// A bounded FIFO mailbox with a per-actor overflow policy.
//
//   reject       a message that finds the mailbox full is refused; the sender gets
//                a MailboxFullError (the default: nothing accepted is ever lost)
//   drop-oldest  the oldest queued message is discarded to make room (lossy
//                telemetry only); the count of dropped messages is kept
//
// Storage is a ring buffer: `head` indexes the oldest message, `length` counts
// queued messages, slots wrap modulo capacity. Nothing is allocated per message.

export type OverflowPolicy = 'reject' | 'drop-oldest';

export interface MailboxOptions {
  capacity: number;
  overflow: OverflowPolicy;
}

export const DEFAULT_MAILBOX: MailboxOptions = { capacity: 1024, overflow: 'reject' };

export interface MailboxStats {
  depth: number;
  capacity: number;
  overflow: OverflowPolicy;
  enqueued: number;
  rejected: number;
  dropped: number;
}

export type OfferResult<T> =
  | { accepted: true; dropped?: T }
  | { accepted: false };

export class BoundedMailbox<T> {
  private readonly slots: (T | undefined)[];
  private head = 0;
  private length = 0;
  private enqueued = 0;
  private rejected = 0;
  private dropped = 0;

  constructor(readonly options: MailboxOptions) {
    if (!Number.isInteger(options.capacity) || options.capacity < 1) {
      throw new RangeError(`mailbox capacity must be a positive integer, got ${options.capacity}`);
    }
    if (options.overflow !== 'reject' && options.overflow !== 'drop-oldest') {
      throw new RangeError(`mailbox overflow policy must be "reject" or "drop-oldest", got "${String(options.overflow)}"`);
    }
    this.slots = new Array(options.capacity);
  }

  get depth(): number {
    return this.length;
  }

  /** Queues a message; on a full mailbox applies the overflow policy. */
  offer(item: T): OfferResult<T> {
    const capacity = this.options.capacity;
    if (this.length === capacity) {
      if (this.options.overflow === 'reject') {
        this.rejected++;
        return { accepted: false };
      }
      const oldest = this.shift()!;
      this.dropped++;
      this.push(item);
      return { accepted: true, dropped: oldest };
    }
    this.push(item);
    return { accepted: true };
  }

  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.slots[this.head];
    this.slots[this.head] = undefined;
    this.head = (this.head + 1) % this.options.capacity;
    this.length--;
    return item;
  }

  /** Empties the mailbox, returning what was queued (oldest first). */
  drain(): T[] {
    const items: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) items.push(item);
    return items;
  }

  stats(): MailboxStats {
    return {
      depth: this.length,
      capacity: this.options.capacity,
      overflow: this.options.overflow,
      enqueued: this.enqueued,
      rejected: this.rejected,
      dropped: this.dropped,
    };
  }

  private push(item: T): void {
    this.slots[(this.head + this.length) % this.options.capacity] = item;
    this.length++;
    this.enqueued++;
  }
}
