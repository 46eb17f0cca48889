// The choices of one request, running in the engine as one unit: their
// deltas arrive merged, tagged with the choice's index. Two ways to stop it:
//
//   abort()   ends every unfinished choice now with finish_reason "abort"
//             (shutdown past its grace period, a WebSocket cancel): the
//             consumer still gets a well-formed end.
//   detach()  the client is gone: the engine requests are aborted (their KV
//             blocks return) and nobody is told anything more.
import { merge, map, type Observable, type Subscription } from 'rxjs';
import type { RequestDelta } from '../actors/front/request-record.js';
import type { ChoiceDelta } from './openai-format.js';

export interface RunHandlers {
  next(event: ChoiceDelta): void;
  complete(): void;
  error(error: unknown): void;
}

export class GenerationRun {
  private subscription: Subscription | undefined;
  private readonly finished: boolean[];
  private ended = false;

  constructor(private readonly streams: Observable<RequestDelta>[], private readonly handlers: RunHandlers, private readonly onEnd: () => void = () => {}) {
    this.finished = streams.map(() => false);
  }

  start(): this {
    const tagged = this.streams.map((stream, index) => stream.pipe(map((delta): ChoiceDelta => ({ index, delta }))));
    this.subscription = merge(...tagged).subscribe({
      next: (event) => {
        if (event.delta.finishReason) this.finished[event.index] = true;
        try {
          this.handlers.next(event);
        } catch (error) {
          // a handler that throws must not escape into rxjs (it would rethrow it out of band and end the process)
          this.subscription?.unsubscribe();
          this.end(() => this.handlers.error(error));
        }
      },
      complete: () => this.end(() => this.handlers.complete()),
      error: (error) => this.end(() => this.handlers.error(error)),
    });
    return this;
  }

  get done(): boolean {
    return this.ended;
  }

  abort(): void {
    if (this.ended) return;
    this.subscription?.unsubscribe();
    this.end(() => {
      this.finished.forEach((finished, index) => {
        if (!finished) this.handlers.next({ index, delta: { requestId: '', text: '', tokenIds: [], finishReason: 'abort' } });
      });
      this.handlers.complete();
    });
  }

  detach(): void {
    if (this.ended) return;
    this.subscription?.unsubscribe();
    this.end(() => {});
  }

  private end(then: () => void): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    try {
      then();
    } catch (error) {
      console.error(`[troupe] gateway: a response handler failed: ${(error as Error)?.stack ?? error}`);
    }
  }
}
