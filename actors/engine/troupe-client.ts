// The programmatic API's side of the front's protocol (front/protocol.ts): an
// actor that receives its requests' deltas, one message per engine step, and
// hands each choice's deltas to an Observable. It lives outside the engine's
// tree: a client of the engine, not a part of it.
import { Observable, type Subscriber } from 'rxjs';
import { Actor } from '../../runtime/index.js';
import { EngineUnavailableError, type EngineState } from '../front/engine-availability.js';
import { EngineRequestError, type ClientMessage, type EngineError, type RequestDelta } from '../front/protocol.js';
import { nowMs } from './step-timings.js';

/**
 * One choice's deltas: held until the first subscriber comes (a caller may
 * subscribe after the first deltas arrived), then passed straight through.
 */
class ChoiceStream {
  private subscriber: Subscriber<RequestDelta> | undefined;
  private held: RequestDelta[] = [];
  private ended: { error?: Error } | undefined;
  readonly observable: Observable<RequestDelta>;

  constructor(onUnsubscribe: () => void) {
    this.observable = new Observable<RequestDelta>((subscriber) => {
      if (this.subscriber) throw new Error('a choice stream has one subscriber');
      this.subscriber = subscriber;
      for (const delta of this.held) subscriber.next(delta);
      this.held = [];
      if (this.ended) this.end(this.ended.error);
      return () => {
        if (!this.ended) onUnsubscribe();
      };
    });
  }

  next(delta: RequestDelta): void {
    if (this.subscriber) this.subscriber.next(delta);
    else this.held.push(delta);
    if (delta.finishReason) this.end();
  }

  end(error?: Error): void {
    this.ended = error ? { error } : {};
    if (!this.subscriber) return;
    if (error) this.subscriber.error(error);
    else this.subscriber.complete();
  }
}

/** An EngineError as the error a caller catches (EngineUnavailableError for 'unavailable'). */
export function engineErrorOf(error: EngineError): Error {
  return error.code === 'unavailable' ? new EngineUnavailableError(error.message) : new EngineRequestError(error);
}

export class TroupeClient extends Actor<ClientMessage> {
  private readonly streams = new Map<string, ChoiceStream>();
  state: EngineState = { state: 'starting' };
  /** Time spent handing deltas to subscribers (the "gateway" part of step-timings.ts). */
  handlingMs = 0;

  /** Opens the streams of these request ids (before submitting them: deltas may come before the reply). */
  open(requestIds: string[], onUnsubscribe: (requestId: string) => void): Observable<RequestDelta>[] {
    return requestIds.map((id) => {
      const stream = new ChoiceStream(() => {
        this.streams.delete(id);
        onUnsubscribe(id);
      });
      this.streams.set(id, stream);
      return stream.observable;
    });
  }

  /** Forgets streams whose submit was refused. */
  close(requestIds: string[]): void {
    for (const id of requestIds) this.streams.delete(id);
  }

  get openStreams(): number {
    return this.streams.size;
  }

  receive(message: ClientMessage): void {
    switch (message.type) {
      case 'deltas': {
        const started = nowMs();
        for (const delta of message.deltas) {
          const stream = this.streams.get(delta.requestId);
          if (!stream) continue; // unsubscribed: the request was aborted
          if (delta.finishReason) this.streams.delete(delta.requestId);
          stream.next(delta);
        }
        this.handlingMs += nowMs() - started;
        return;
      }
      case 'failed': {
        const stream = this.streams.get(message.requestId);
        this.streams.delete(message.requestId);
        stream?.end(engineErrorOf(message.error));
        return;
      }
      case 'engine-state':
        this.state = message.state;
        return;
    }
  }
}
