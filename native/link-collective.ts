// One rank's handle on a tensor group whose ranks sit on different nodes
// (native/src/collectives/link_group.h has the protocol). The native model
// step runs the all-reduces itself; this handle is where their vectors
// leave and enter:
//
//   const link = LinkCollective.create({ ranks: 2, rank, capacityBytes, onPart: (g, part) => tell peers (g, rank, part) });
//   on a peer's (g, q, part):  link.put(g, q, part)   (only for link.generation; hold one early generation)
//   LlamaModel.load(..., { group: link })             the step's all-reduces wait for the peers' parts
//   on a peer's death / stop:  link.abort()           a waiting step fails at once
//
// The fold is the shared-memory group's (fold_rank_order), so results are
// bit-identical to a tensor group on one machine and to a single rank.
import type { RawCollectives, RawLinkHandle, RawLinkStats } from './collectives-raw.js';
import { loadNative } from './index.js';

export interface CreateLinkCollectiveOptions {
  ranks: number;
  rank: number;
  /** Largest all-reduce vector in bytes (a multiple of 4). */
  capacityBytes: number;
  /** This rank's vector of an all-reduce, for its peers; runs on this thread, must not throw. */
  onPart: (generation: number, part: Float32Array) => void;
}

let rawCollectives: RawCollectives | undefined;
function raw(): RawCollectives {
  return (rawCollectives ??= loadNative().collectives);
}

export class LinkCollective {
  readonly ranks: number;
  readonly rank: number;
  readonly capacityBytes: number;
  #handle: RawLinkHandle | undefined;

  private constructor(options: CreateLinkCollectiveOptions, handle: RawLinkHandle) {
    this.ranks = options.ranks;
    this.rank = options.rank;
    this.capacityBytes = options.capacityBytes;
    this.#handle = handle;
  }

  static create(options: CreateLinkCollectiveOptions): LinkCollective {
    return new LinkCollective(options, raw().linkCreate(options.ranks, options.rank, options.capacityBytes, options.onPart));
  }

  /** Peer `fromRank`'s vector of `generation`; '' when taken, else why not (the waiting step fails with it). */
  put(generation: number, fromRank: number, part: Float32Array): string {
    return raw().linkPut(this.#live('put'), generation, fromRank, part);
  }

  /** The generation of the all-reduce in progress or last done (0 before the first). */
  get generation(): number {
    return raw().linkGeneration(this.#live('generation'));
  }

  /** In place, waiting on the libuv pool (tests; the model step calls the native all-reduce itself). */
  allReduceAsync(data: Float32Array, timeoutMs: number, segments = 1): Promise<Float32Array> {
    try {
      return raw().linkAllReduceAsync(this.#live('allReduceAsync'), data, timeoutMs, segments);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** For the native model step (models/llama.ts passes it as the shard's group). */
  nativeHandle(): RawLinkHandle {
    return this.#live('nativeHandle');
  }

  /** Releases a waiting all-reduce with TROUPE_COLLECTIVE_ABORTED; the group is unusable after. */
  abort(): void {
    if (this.#handle !== undefined) raw().linkAbort(this.#handle);
  }

  stats(): RawLinkStats {
    return raw().linkStats(this.#live('stats'));
  }

  close(): void {
    if (this.#handle !== undefined) raw().linkClose(this.#handle);
    this.#handle = undefined;
  }

  #live(what: string): RawLinkHandle {
    if (this.#handle === undefined) throw Object.assign(new Error(`${what}: the link group handle is closed`), { code: 'TROUPE_COLLECTIVE_CLOSED' as const });
    return this.#handle;
  }
}
