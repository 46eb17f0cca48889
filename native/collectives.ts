// Shared-memory collectives for the ranks of a tensor group on one machine
// (native/src/collectives/shm_group.h holds the layout and the protocols).
//
//   const group = CollectiveGroup.create({ ranks: 2, capacityBytes: 4 << 20 });  // supervisor
//   send group.descriptor to each rank (a plain object: postMessage, IPC, msgpack)
//   const me = CollectiveRank.attach(descriptor, rank);        // in the rank's thread/process
//   me.allReduce(hidden);                                       // in place, rank-order sum
//   const plan = me.broadcast(0, rank === 0 ? bytes : undefined);
//   on a peer's death: group.bumpEpoch() -> every waiter throws TROUPE_COLLECTIVE_ABORTED
//
// One implementation for worker threads and child processes: the group is a
// memfd held open by its creator; ranks attach through /proc/<pid>/fd/<fd>.
// Nothing is ever created in /dev/shm, and the memory is freed when the last
// handle is gone, crashes included.
//
// Semantics
// - allReduce: every rank calls it with equally long Float32Arrays, in the
//   same sequence; each gets ((v0 + v1) + v2) + ... summed in rank order, so
//   the result is bit-identical on every rank and to the sequential sum.
// - broadcast: every rank calls it with the same root; the root's bytes are
//   copied to every other rank (into `buffer` if given, else a new array).
// - Calls are synchronous and block their thread: a rank lives in its own
//   worker thread or process. The *Async variants run the wait on the libuv
//   pool and return a Promise (do not touch the array until it settles).
// - Every call is bounded by a timeout (TROUPE_COLLECTIVE_TIMEOUT, naming the
//   ranks that did not arrive) and by the group's epoch: bumpEpoch() on any
//   handle releases every waiter at once with TROUPE_COLLECTIVE_ABORTED
//   ("collective aborted: epoch changed (a peer died?)").
// - After a timeout or an abort the group is unusable: ranks no longer agree
//   on generations. Close every handle and create a new group.
// - The creator must keep its CollectiveGroup open (not closed, not garbage)
//   while ranks attach: attaching opens the creator's fd. Ranks already
//   attached keep working after the creator closes or dies.
import { loadNative } from './index.js';
import type { RawCollectiveDescriptor, RawCollectiveHandle, RawCollectiveStats, RawCollectives } from './collectives-raw.js';

const COLLECTIVE_DESCRIPTOR_KIND = 'troupe.shm-collectives';

/** What a rank needs to attach: plain data, safe to send in any message. */
export type CollectiveGroupDescriptor = Readonly<RawCollectiveDescriptor>;

/** Per-handle counters (tests use them to assert collectives happened). */
export type CollectiveStats = Readonly<RawCollectiveStats>;

/** The `code` of errors thrown by collectives. */
export type CollectiveErrorCode =
  | 'TROUPE_COLLECTIVE_TYPE'
  | 'TROUPE_COLLECTIVE_RANGE'
  | 'TROUPE_COLLECTIVE_ATTACH'
  | 'TROUPE_COLLECTIVE_TIMEOUT'
  | 'TROUPE_COLLECTIVE_ABORTED'
  | 'TROUPE_COLLECTIVE_MISMATCH'
  | 'TROUPE_COLLECTIVE_BROKEN'
  | 'TROUPE_COLLECTIVE_CLOSED'
  | 'TROUPE_COLLECTIVE_BUSY'
  | 'TROUPE_COLLECTIVE_STATE'
  | 'TROUPE_COLLECTIVE_SYSTEM';

/** True when `err` is an error a collective threw (optionally with this code). */
export function isCollectiveError(err: unknown, code?: CollectiveErrorCode): err is Error & { code: CollectiveErrorCode } {
  if (!(err instanceof Error)) return false;
  const c = (err as Error & { code?: unknown }).code;
  return typeof c === 'string' && c.startsWith('TROUPE_COLLECTIVE_') && (code === undefined || c === code);
}

/** Structural check (the native attach validates the region itself). */
export function isCollectiveGroupDescriptor(value: unknown): value is CollectiveGroupDescriptor {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return (
    d.kind === COLLECTIVE_DESCRIPTOR_KIND &&
    ['version', 'pid', 'fd', 'bytes', 'ranks', 'capacityBytes', 'broadcastCapacityBytes'].every((k) => Number.isSafeInteger(d[k])) &&
    typeof d.id === 'string'
  );
}

const DEFAULT_COLLECTIVE_TIMEOUT_MS = 10_000;
/** The longest timeout a call accepts (24 h): every wait is bounded. */
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
/** How long a wait spins before it sleeps on the futex (2 cores here: keep it short). */
export const DEFAULT_SPIN_MICROS = 10;

export interface CreateCollectiveGroupOptions {
  /** Ranks taking part, 1..64. */
  ranks: number;
  /** Largest all-reduce vector in bytes (a multiple of 4). Memory: 2 × ranks × this. */
  capacityBytes: number;
  /** Largest broadcast message in bytes (default: capacityBytes). Memory: 2 × this. */
  broadcastCapacityBytes?: number;
}

export interface AttachCollectiveOptions {
  /** Default timeout of this handle's calls (ms). */
  timeoutMs?: number;
  /** Spin this long before sleeping in a wait, 0..10000 µs. */
  spinMicros?: number;
}

export interface CollectiveCallOptions {
  /** This call's timeout (ms); default: the handle's. */
  timeoutMs?: number;
}

// Per thread (each worker has its own module instance and addon instance).
// Cached: loadNative() resolves the addon path on every call.
let rawCollectives: RawCollectives | undefined;
function raw(): RawCollectives {
  return (rawCollectives ??= loadNative().collectives);
}

/**
 * The group's shared memory, owned by its creator (normally the rank group's
 * supervisor). Not a rank: it describes the group, bumps the epoch and
 * attaches ranks (in this thread) for convenience.
 */
export class CollectiveGroup {
  readonly descriptor: CollectiveGroupDescriptor;
  #handle: RawCollectiveHandle | undefined;

  private constructor(handle: RawCollectiveHandle) {
    this.#handle = handle;
    this.descriptor = Object.freeze(raw().shmDescriptor(handle));
  }

  /** Creates the memfd and maps it. Throws RangeError for bad sizes, Error if the memory cannot be committed. */
  static create(options: CreateCollectiveGroupOptions): CollectiveGroup {
    const { ranks, capacityBytes } = options;
    const broadcastCapacityBytes = options.broadcastCapacityBytes ?? capacityBytes;
    return new CollectiveGroup(raw().shmCreate(ranks, capacityBytes, broadcastCapacityBytes));
  }

  get ranks(): number {
    return this.descriptor.ranks;
  }

  /** Attaches `rank` in this thread (same as CollectiveRank.attach(this.descriptor, rank)). */
  attach(rank: number, options?: AttachCollectiveOptions): CollectiveRank {
    return CollectiveRank.attach(this.descriptor, rank, options);
  }

  /** Aborts the group: every current and future wait of every rank fails. Returns the new epoch. */
  bumpEpoch(): number {
    return raw().shmBumpEpoch(this.#live('bumpEpoch'));
  }

  /** 0 while the group is healthy. */
  get epoch(): number {
    return raw().shmEpoch(this.#live('epoch'));
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Closes the creator's fd and mapping; ranks already attached are unaffected, new ones cannot attach. */
  close(): void {
    if (this.#handle !== undefined) raw().shmClose(this.#handle);
    this.#handle = undefined;
  }

  #live(what: string): RawCollectiveHandle {
    if (this.#handle === undefined) throw closedError(what);
    return this.#handle;
  }
}

/** One rank's handle on a group, in the thread or process that runs the rank. */
export class CollectiveRank {
  readonly descriptor: CollectiveGroupDescriptor;
  readonly rank: number;
  readonly timeoutMs: number;
  #handle: RawCollectiveHandle | undefined;

  private constructor(descriptor: CollectiveGroupDescriptor, rank: number, handle: RawCollectiveHandle, timeoutMs: number) {
    this.descriptor = descriptor;
    this.rank = rank;
    this.#handle = handle;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Attaches as `rank`. Errors (code TROUPE_COLLECTIVE_ATTACH) say what is
   * wrong: the creator is gone or closed the group, the descriptor does not
   * match the region, the rank is already attached...
   */
  static attach(descriptor: CollectiveGroupDescriptor, rank: number, options: AttachCollectiveOptions = {}): CollectiveRank {
    const timeoutMs = options.timeoutMs ?? DEFAULT_COLLECTIVE_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`attachGroup: timeoutMs must be > 0 and <= ${MAX_TIMEOUT_MS} (every wait is bounded), got ${String(timeoutMs)}`);
    }
    const handle = raw().shmAttach(descriptor, rank, options.spinMicros ?? DEFAULT_SPIN_MICROS);
    return new CollectiveRank(Object.freeze({ ...descriptor }), rank, handle, timeoutMs);
  }

  get ranks(): number {
    return this.descriptor.ranks;
  }
  get capacityBytes(): number {
    return this.descriptor.capacityBytes;
  }
  get broadcastCapacityBytes(): number {
    return this.descriptor.broadcastCapacityBytes;
  }

  /** In place: `data` becomes the rank-order sum of every rank's `data`; returns it. */
  allReduce(data: Float32Array, options?: CollectiveCallOptions): Float32Array {
    raw().shmAllReduce(this.#live('allReduce'), data, options?.timeoutMs ?? this.timeoutMs);
    return data;
  }

  /**
   * The row-parallel all-reduce of tensor parallelism: `data` holds this
   * rank's `segments` partial sums of m = data.length / segments elements
   * each; every rank gets, in data[0, m), the fold of all ranks' parts left to
   * right in (rank, part) order: exactly the additions one rank holding every
   * part would make, so tp = 1, 2, 4, 8 agree bit for bit. Returns that view.
   */
  allReduceSegments(data: Float32Array, segments: number, options?: CollectiveCallOptions): Float32Array {
    raw().shmAllReduce(this.#live('allReduceSegments'), data, options?.timeoutMs ?? this.timeoutMs, segments);
    return data.subarray(0, data.length / segments);
  }

  /** allReduce with the wait on the libuv pool; `data` must not be touched until the Promise settles. */
  allReduceAsync(data: Float32Array, options?: CollectiveCallOptions): Promise<Float32Array> {
    try {
      return raw().shmAllReduceAsync(this.#live('allReduceAsync'), data, options?.timeoutMs ?? this.timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The root passes the bytes to send and gets them back; every other rank
   * gets the root's bytes: a view of `buffer` when given (RangeError, message
   * kept pending, if too small), else a new Uint8Array.
   */
  broadcast(root: number, buffer?: Uint8Array, options?: CollectiveCallOptions): Uint8Array {
    return raw().shmBroadcast(this.#live('broadcast'), root, buffer, options?.timeoutMs ?? this.timeoutMs);
  }

  broadcastAsync(root: number, buffer?: Uint8Array, options?: CollectiveCallOptions): Promise<Uint8Array> {
    try {
      return raw().shmBroadcastAsync(this.#live('broadcastAsync'), root, buffer, options?.timeoutMs ?? this.timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The raw handle, for native code that runs this rank's collectives itself
   * (a tensor-parallel model step: native/src/model/model_parallel.h). While such
   * code runs, make no call on this rank from JS: generations must stay in step.
   */
  nativeHandle(): RawCollectiveHandle {
    return this.#live('nativeHandle');
  }

  /** Aborts the group for every rank (see CollectiveGroup.bumpEpoch). */
  bumpEpoch(): number {
    return raw().shmBumpEpoch(this.#live('bumpEpoch'));
  }

  get epoch(): number {
    return raw().shmEpoch(this.#live('epoch'));
  }

  stats(): CollectiveStats {
    return raw().shmStats(this.#live('stats'));
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Unmaps (once any async call finished) and frees the rank for a later attach. */
  close(): void {
    if (this.#handle !== undefined) raw().shmClose(this.#handle);
    this.#handle = undefined;
  }

  #live(what: string): RawCollectiveHandle {
    if (this.#handle === undefined) throw closedError(what);
    return this.#handle;
  }
}

function closedError(what: string): Error {
  return Object.assign(new Error(`${what}: the group handle is closed`), { code: 'TROUPE_COLLECTIVE_CLOSED' as const });
}
