// The simplest KV page allocator: a free list. For tools, benchmarks and
// tests that drive a LlamaModel directly; the engine's block pool (ref counts,
// prefix caching, eviction order) belongs to the scheduler.
export class PageAllocator {
  private readonly free: number[];
  constructor(readonly numBlocks: number) {
    this.free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }
  get available(): number {
    return this.free.length;
  }
  /** Grows `table` so it covers `tokens` tokens of `blockSize` slots. */
  ensure(table: number[], tokens: number, blockSize: number): number[] {
    const need = Math.ceil(tokens / blockSize);
    while (table.length < need) {
      const page = this.free.pop();
      if (page === undefined) throw new RangeError(`out of KV pages (${this.numBlocks} in all)`);
      table.push(page);
    }
    return table;
  }
  release(table: number[]): void {
    this.free.push(...table.reverse());
    table.length = 0;
  }
}
