// The KV block pool: which physical KV pages are free, who holds them, and
// which full blocks can be reused by content (prefix caching).
//
//   refCount[b]   requests holding block b (0: free, but maybe still cached)
//   hashOf[b]     chained hash of b's tokens while b holds a cached full block
//   byHash        hash -> block, the prefix index
//   free queue    blocks with refCount 0 in eviction order: allocation takes
//                 from the head (least recently freed); a request frees its
//                 blocks tail first, so a prefix outlives its suffix
//
// A free block keeps its hash until it is allocated again: a later request
// with the same prefix "touches" it back out of the free queue. The free queue
// is an intrusive doubly linked list (prev/next arrays) so touching a block in
// the middle of it is O(1).
const NIL = -1;

export interface BlockPoolStats {
  numBlocks: number;
  free: number;
  cached: number;
  usage: number;
}

export class BlockPool {
  private readonly refCount: Int32Array;
  private readonly hashOf: (string | undefined)[];
  private readonly byHash = new Map<string, number>();
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private head = NIL;
  private tail = NIL;
  private freeCount = 0;

  constructor(readonly numBlocks: number, readonly prefixCaching = true) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) throw new RangeError(`a block pool needs at least 1 block, got ${numBlocks}`);
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Array(numBlocks);
    this.prev = new Int32Array(numBlocks).fill(NIL);
    this.next = new Int32Array(numBlocks).fill(NIL);
    for (let b = 0; b < numBlocks; b++) this.append(b);
  }

  get numFree(): number {
    return this.freeCount;
  }

  /** The cached block holding this content, if any (free or in use). */
  cachedBlock(hash: string): number | undefined {
    return this.byHash.get(hash);
  }

  /** Free blocks among `blocks` (taking them would shrink the free queue). */
  countFree(blocks: readonly number[]): number {
    let n = 0;
    for (const b of blocks) if (this.refCount[b] === 0) n++;
    return n;
  }

  /** Takes a reference on blocks found in the prefix index. */
  touch(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (this.refCount[b] === 0) this.unlink(b);
      this.refCount[b]++;
    }
  }

  /** `n` fresh blocks (evicting their cached content), or null if fewer are free. */
  allocate(n: number): number[] | null {
    if (n > this.freeCount) return null;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = this.head;
      this.unlink(b);
      this.evict(b);
      this.refCount[b] = 1;
      out.push(b);
    }
    return out;
  }

  /** Drops one reference per block; blocks reaching 0 join the free queue in the order given. */
  free(blocks: readonly number[]): void {
    for (const b of blocks) {
      if (this.refCount[b]! <= 0) throw new Error(`block ${b} freed more often than taken`);
      if (--this.refCount[b]! === 0) this.append(b);
    }
  }

  /** Records that a full block holds the content with this chained hash. */
  cache(block: number, hash: string): void {
    if (!this.prefixCaching || this.hashOf[block] !== undefined) return;
    if (this.byHash.has(hash)) return; // the same content already lives in another block
    this.hashOf[block] = hash;
    this.byHash.set(hash, block);
  }

  /** Forgets every cached prefix. Refused (false) while any block is in use, like vLLM. */
  resetPrefixCache(): boolean {
    if (this.freeCount !== this.numBlocks) return false;
    this.byHash.clear();
    this.hashOf.fill(undefined);
    return true;
  }

  stats(): BlockPoolStats {
    return { numBlocks: this.numBlocks, free: this.freeCount, cached: this.byHash.size, usage: 1 - this.freeCount / this.numBlocks };
  }

  private evict(b: number): void {
    const hash = this.hashOf[b];
    if (hash === undefined) return;
    this.byHash.delete(hash);
    this.hashOf[b] = undefined;
  }

  private append(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NIL;
    if (this.tail === NIL) this.head = b;
    else this.next[this.tail] = b;
    this.tail = b;
    this.freeCount++;
  }

  private unlink(b: number): void {
    const p = this.prev[b]!;
    const n = this.next[b]!;
    if (p === NIL) this.head = n;
    else this.next[p] = n;
    if (n === NIL) this.tail = p;
    else this.prev[n] = p;
    this.prev[b] = NIL;
    this.next[b] = NIL;
    this.freeCount--;
  }
}
