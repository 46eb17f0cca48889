// Per-request block tables on top of the block pool.
//
// Block table of a request: the physical blocks holding its tokens in
// position order. Token at position p lives in slot
//   blockTable[floor(p / blockSize)] * blockSize + p % blockSize
// A table always covers at least numComputedTokens; a step's allocation grows
// it to cover the tokens the step will compute.
import { extendBlockHashes } from './block-hash.js';
import { BlockPool } from './block-pool.js';
import type { SchedulerRequest } from './request.js';

export interface PrefixHit {
  blocks: number[];
  tokens: number;
}

export class KvBlocks {
  private readonly tables = new Map<string, number[]>();
  /** Lifetime totals in tokens, for the vllm:prefix_cache_* metrics. */
  prefixQueries = 0;
  prefixHits = 0;

  constructor(readonly pool: BlockPool, readonly blockSize: number) {}

  table(request: SchedulerRequest): readonly number[] {
    return this.tables.get(request.id) ?? [];
  }

  /**
   * The longest run of cached full blocks at the start of a waiting request.
   * At least the last token is always left to compute: its logits are needed.
   */
  findPrefix(request: SchedulerRequest): PrefixHit {
    if (!this.pool.prefixCaching || request.skipPrefixCache) return { blocks: [], tokens: 0 };
    const numTokens = request.numTokens;
    extendBlockHashes(request.blockHashes, numTokens, (i) => request.tokenAt(i), this.blockSize);
    const maxBlocks = Math.floor((numTokens - 1) / this.blockSize);
    const blocks: number[] = [];
    for (let i = 0; i < maxBlocks; i++) {
      const block = this.pool.cachedBlock(request.blockHashes[i]!);
      if (block === undefined) break;
      blocks.push(block);
    }
    this.prefixQueries += numTokens;
    this.prefixHits += blocks.length * this.blockSize;
    return { blocks, tokens: blocks.length * this.blockSize };
  }

  /**
   * Grows the request's table so it covers `upTo` tokens, first adopting the
   * prefix hit's blocks (for a request being admitted). False, with nothing
   * changed, when the pool cannot supply the blocks.
   */
  allocate(request: SchedulerRequest, upTo: number, hit?: PrefixHit): boolean {
    const table = this.tables.get(request.id) ?? [];
    const adopt = hit?.blocks ?? [];
    const needed = Math.max(0, Math.ceil(upTo / this.blockSize) - table.length - adopt.length);
    if (needed + this.pool.countFree(adopt) > this.pool.numFree) return false;
    this.pool.touch(adopt);
    const fresh = this.pool.allocate(needed)!;
    table.push(...adopt, ...fresh);
    this.tables.set(request.id, table);
    return true;
  }

  /** Registers the request's now-computed full blocks in the prefix index. */
  cacheComputed(request: SchedulerRequest): void {
    if (!this.pool.prefixCaching) return;
    const table = this.tables.get(request.id);
    if (!table) return;
    const full = Math.floor(request.numComputedTokens / this.blockSize);
    extendBlockHashes(request.blockHashes, request.numComputedTokens, (i) => request.tokenAt(i), this.blockSize);
    for (let i = request.registeredBlocks; i < full; i++) this.pool.cache(table[i]!, request.blockHashes[i]!);
    request.registeredBlocks = Math.max(request.registeredBlocks, full);
  }

  /** Returns the request's blocks, last block first, so its prefix stays cached longest. */
  free(request: SchedulerRequest): void {
    const table = this.tables.get(request.id);
    if (!table) return;
    this.pool.free([...table].reverse());
    this.tables.delete(request.id);
    request.registeredBlocks = 0;
  }
}
