// Admission control: how many sequences the gateway lets into the engine.
// The engine runs up to max_num_seqs at once; past that, requests wait in
// its queue. The gateway admits at most --max-pending-requests waiting
// sequences beyond what can run, and answers 429 to the rest, so an overload
// turns into quick refusals instead of an unbounded queue. A request counts
// as many sequences as it has choices (prompts x n), from the moment it is
// admitted (before tokenization) until its last choice ends.
//
// /tokenize and /detokenize use the tokenizer but no sequence: they get a
// lane of their own, a few at once (429 past it; GatewayOptions.maxTokenizeRequests),
// so a flood of them cannot fill the tokenizer's mailbox and starve the
// tokenization of generation requests.
import { ApiError, badRequest } from './errors.js';

export class Admission {
  private inFlight = 0;
  private tokenizing = 0;
  private draining = false;

  constructor(private readonly maxRunning: number, private readonly maxPending: number, private readonly maxTokenize = DEFAULT_MAX_TOKENIZE_REQUESTS) {}

  get capacity(): number {
    return this.maxRunning + this.maxPending;
  }

  /** Sequences admitted and not yet finished, tokenize requests included. */
  get admitted(): number {
    return this.inFlight + this.tokenizing;
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
    return once(() => { this.inFlight -= sequences; });
  }

  /** Admits a /tokenize or /detokenize request or throws (503 draining, 429 full); returns the release function. */
  acquireTokenize(): () => void {
    if (this.draining) throw new ApiError(503, 'the server is shutting down and accepts no new requests');
    if (this.tokenizing >= this.maxTokenize) {
      throw new ApiError(429, `the server is at capacity: ${this.tokenizing} tokenize requests are already running (at most ${this.maxTokenize} at once); retry later`);
    }
    this.tokenizing++;
    return once(() => { this.tokenizing--; });
  }
}

/** Tokenize and detokenize requests at once, by default. */
const DEFAULT_MAX_TOKENIZE_REQUESTS = 16;

function once(release: () => void): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    release();
  };
}
