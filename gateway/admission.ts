// Admission control: how many sequences the gateway lets into the engine.
// The engine runs up to max_num_seqs at once; past that, requests wait in
// its queue. The gateway admits at most --max-pending-requests waiting
// sequences beyond what can run, and answers 429 to the rest, so an overload
// turns into quick refusals instead of an unbounded queue. A request counts
// as many sequences as it has choices (prompts x n), from the moment it is
// admitted (before tokenization) until its last choice ends.
import { ApiError, badRequest } from './errors.js';

export class Admission {
  private inFlight = 0;
  private draining = false;

  constructor(private readonly maxRunning: number, private readonly maxPending: number) {}

  get capacity(): number {
    return this.maxRunning + this.maxPending;
  }

  /** Sequences admitted and not yet finished. */
  get admitted(): number {
    return this.inFlight;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** From now on every request is refused with 503 (shutdown). */
  drain(): void {
    this.draining = true;
  }

  /** Admits `sequences` or throws (503 draining, 400 too big to ever fit, 429 full); returns the release function. */
  acquire(sequences: number): () => void {
    if (this.draining) throw new ApiError(503, 'the server is shutting down and accepts no new requests');
    if (sequences > this.capacity) {
      throw badRequest(`this request asks for ${sequences} sequences (prompts x n); the server takes at most ${this.capacity} at once`, 'n');
    }
    if (this.inFlight + sequences > this.capacity) {
      const waiting = Math.max(0, this.inFlight - this.maxRunning);
      throw new ApiError(429, `the server is at capacity: ${waiting} sequences are already waiting (--max-pending-requests ${this.maxPending}); retry later`);
    }
    this.inFlight += sequences;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight -= sequences;
    };
  }
}
