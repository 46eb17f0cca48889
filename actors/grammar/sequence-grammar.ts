// One sequence's grammar state: an xgrammar matcher that has accepted the
// sequence's output tokens so far. It lives in the scheduler's request record
// (actors/scheduler/request.ts), so it sees every token the request keeps:
// preemption keeps the tokens and the matcher; a scheduler rebuilt after a
// restart makes a new matcher and replays the tokens (replay).
import type { NativeMatcher, XGrammarBinding } from './xgrammar.js';

export class SequenceGrammar {
  /** Mask words: ceil(vocabSize / 32). */
  readonly words: number;
  private disposed = false;

  constructor(
    private readonly matcher: NativeMatcher,
    private readonly binding: XGrammarBinding,
    readonly vocabSize: number,
  ) {
    this.words = Math.ceil(vocabSize / 32);
  }

  /** Advances by one token; false (and no change) when the grammar does not allow it. */
  accept(token: number): boolean {
    return this.matcher.AcceptToken(token, false);
  }

  /** The grammar is complete and its stop token accepted: nothing more may follow. */
  get terminated(): boolean {
    return this.matcher.IsTerminated();
  }

  /**
   * Writes the tokens allowed next into out[0, words): bit (id % 32) of word
   * id / 32 set = allowed (xgrammar's layout, what the native sampler reads).
   * Not for a terminated matcher.
   */
  fillMask(out: Uint32Array): void {
    const vector = this.matcher.GetNextTokenBitmask(this.vocabSize);
    try {
      const view = this.binding.vecIntToView(vector);
      out.set(new Uint32Array(view.buffer, view.byteOffset, this.words));
    } finally {
      vector.delete();
    }
  }

  /** A fresh mask (fillMask into a new array). */
  nextMask(): Uint32Array {
    const out = new Uint32Array(this.words);
    this.fillMask(out);
    return out;
  }

  /** Back to the start, then accepts `tokens`; false when one is not allowed (the state is then that before it). */
  replay(tokens: readonly number[]): boolean {
    this.matcher.Reset();
    for (const t of tokens) if (!this.accept(t)) return false;
    return true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.matcher.delete();
  }
}
