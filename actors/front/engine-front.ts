// The engine front: owns the request records, above the engine subtree, so a
// restart below it loses nothing. It hands requests to the scheduler, turns
// the scheduler's tokens into text deltas through the detokenizer, and
// streams them to subscribers (an rxjs Subject per request).
//
// Exactly-once deltas across restarts: a token is accepted only at the next
// output index the record expects, and the detokenizer's state is rebuilt by
// replaying the tokens already accepted (which re-yields exactly the text
// already sent, discarded), so the stream continues where it left off.
//
// Every accepted request ends: with its finish reason, or, when the engine
// cannot make progress (engine-availability.ts) or this front stops, with an
// EngineUnavailableError on its stream.
import type { Observable } from 'rxjs';
import { Actor, ActorStoppedError, AskTimeoutError, type ActorRef, type Signal } from '../../runtime/index.js';
import { DEFAULT_ENGINE_RECOVERY_TIMEOUT_MS, EngineAvailability, EngineUnavailableError, type EngineState } from './engine-availability.js';
import { stopStrings, type GenerationParams } from '../engine/request-params.js';
import type { DeltaReply, DetokenizerMessage } from '../detokenizer/messages.js';
import type { FrontMessage, GeneratedToken, PromptLogprobChunk, RequestEvent } from '../messages/front.js';
import type { EngineRequest, SchedulerMessage } from '../messages/scheduler.js';
import type { FinishReason } from '../scheduler/request.js';
import type { FinishedRequest } from '../scheduler/scheduler.js';
import { RequestRecord, type RequestDelta } from './request-record.js';

export interface EngineFrontOptions {
  schedulerPath: string;
  detokenizerPath: string;
  /** How long requests wait for a stopped engine to come back before they end with a 503 (default 120 s). */
  recoveryTimeoutMs?: number;
}

export class EngineFront extends Actor<FrontMessage> {
  private readonly records = new Map<string, RequestRecord>();
  private readonly subscribers: ActorRef<RequestEvent>[] = [];
  private scheduler!: ActorRef<SchedulerMessage>;
  private detokenizer!: ActorRef<DetokenizerMessage>;
  private readonly availability: EngineAvailability;
  private stopped = false;

  constructor(private readonly options: EngineFrontOptions) {
    super();
    this.availability = new EngineAvailability(options.recoveryTimeoutMs ?? DEFAULT_ENGINE_RECOVERY_TIMEOUT_MS, (error) => this.failAll(error));
  }

  get engineState(): EngineState {
    return this.stopped ? { state: 'unavailable', why: 'the engine front stopped' } : this.availability.status;
  }

  override onSignal(signal: Signal): void {
    if (signal.type === 'terminated' && signal.ref.path === this.options.schedulerPath) {
      this.availability.down(`the scheduler stopped (${signal.reason.kind})`);
      return;
    }
    super.onSignal(signal);
  }

  override postStop(): void {
    this.stopped = true;
    this.availability.stop();
    this.failAll(new EngineUnavailableError('the engine front stopped'));
  }

  /** Ends every request with `error` (their streams error; the scheduler forgets them). */
  private failAll(error: EngineUnavailableError): void {
    for (const record of [...this.records.values()]) {
      if (record.finishReason) continue;
      record.finishReason = 'abort';
      this.records.delete(record.id);
      this.scheduler?.tell({ type: 'abort', requestId: record.id, reason: 'abort' });
      this.detokenizer?.tell({ type: 'free', requestId: record.id });
      record.deltas.error(error);
      this.publish(finishedEvent(record, 'abort'));
    }
  }

  override preStart(): void {
    this.scheduler = this.context.system.refFor(this.options.schedulerPath);
    this.detokenizer = this.context.system.refFor(this.options.detokenizerPath);
  }

  /**
   * In-process entry (the offline API and the gateway hold this actor's
   * instance): records the request, hands it to the scheduler, returns its deltas.
   */
  submit(id: string, promptTokens: number[], params: GenerationParams, seed: number, eosTokenIds: number[]): Observable<RequestDelta> {
    if (this.stopped) throw new EngineUnavailableError('the engine front stopped');
    const refusal = this.availability.refusal();
    if (refusal) throw refusal;
    if (this.records.has(id)) throw new Error(`request id "${id}" is already in use`);
    const record = new RequestRecord(id, promptTokens, params, seed, eosTokenIds);
    this.records.set(id, record);
    this.publish({ type: 'submitted', requestId: id, promptTokens: promptTokens.length });
    this.detokenizer.tell({ type: 'create', requestId: id, params: detokenizeParams(params) });
    // If the scheduler is restarting, the send fails; the fresh scheduler collects the request with resubmit-all.
    this.scheduler.send({ type: 'add', requests: [toEngineRequest(record)] }).catch(() => undefined);
    return record.deltas.asObservable();
  }

  /** The client went away (or asked to stop): the request ends now and its blocks are freed. */
  abort(id: string): void {
    const record = this.records.get(id);
    if (!record) return;
    this.scheduler.tell({ type: 'abort', requestId: id, reason: 'abort' });
    this.finish(record, 'abort');
  }

  get unfinished(): number {
    return this.records.size;
  }

  async receive(message: FrontMessage): Promise<void> {
    switch (message.type) {
      case 'step-output':
        if (message.step) this.onStep(message.step);
        return this.onStepOutput(message.tokens, message.promptLogprobs, message.finished);
      case 'resubmit-all': {
        // a scheduler is up: the engine makes progress again until it stops
        this.availability.up();
        this.context.watch(this.scheduler);
        const unfinished = [...this.records.values()].map(toEngineRequest);
        if (unfinished.length) this.publish({ type: 'resubmitted', requestIds: unfinished.map((r) => r.id) });
        message.replyTo.tell(unfinished);
        return;
      }
      case 'watch-requests':
        this.subscribers.push(message.subscriber);
        return;
    }
  }

  /** Queue time ends when a request is first admitted; subscribers hear of every step's size. */
  private onStep(step: NonNullable<Extract<FrontMessage, { type: 'step-output' }>['step']>): void {
    for (const id of step.admitted) {
      const record = this.records.get(id);
      if (record) record.scheduledMs ??= step.startedMs;
    }
    if (this.subscribers.length) this.publish({ type: 'step', numBatchedTokens: step.numBatchedTokens });
  }

  private async onStepOutput(tokens: GeneratedToken[], promptLogprobs: PromptLogprobChunk[], finished: FinishedRequest[]): Promise<void> {
    for (const chunk of promptLogprobs) {
      const record = this.records.get(chunk.requestId);
      if (!record) continue;
      chunk.values.forEach((value, i) => {
        if (value !== null) record.promptLogprobs[chunk.start + i + 1] = { logprob: value, ...(chunk.top ? { top: chunk.top[i]! } : {}) };
      });
    }
    const fresh = new Map<string, GeneratedToken[]>();
    for (const token of tokens) {
      const record = this.records.get(token.requestId);
      if (!record || token.outputIndex !== record.outputTokens.length) continue; // old news, from before a restart
      if (record.outputTokens.length === 0) record.firstTokenMs ??= performance.timeOrigin + performance.now();
      record.outputTokens.push(token.token);
      if (token.cachedTokens !== undefined) record.cachedTokens = token.cachedTokens;
      if (token.logprob !== undefined) record.logprobs.push({ token: token.token, logprob: token.logprob, ...(token.top ? { top: token.top } : {}) });
      fresh.set(token.requestId, [...(fresh.get(token.requestId) ?? []), token]);
    }
    const ending = new Map(finished.map((f) => [f.requestId, f.reason]));
    const stopTokens = new Map(finished.flatMap((f) => (f.stopTokenId !== undefined ? [[f.requestId, f.stopTokenId] as const] : [])));
    for (const [requestId, got] of fresh) {
      // A request can finish while an earlier one's tokens are being detokenized
      // (a client hanging up aborts it): its record is gone, nothing more to send.
      const record = this.records.get(requestId);
      if (!record) continue;
      const reason = ending.get(requestId);
      const reply = await this.detokenize(record, got.map((g) => g.token), reason !== undefined);
      if (reply === 'unavailable') {
        this.requeue(record, got.length);
        ending.delete(requestId);
        continue;
      }
      if (reply === 'refused') {
        // one request the detokenizer cannot serve ends; the front and the others carry on
        this.scheduler.tell({ type: 'abort', requestId, reason: 'abort' });
        this.finish(record, 'abort');
        ending.delete(requestId);
        continue;
      }
      const stopMatched = reply.stop !== null && reason === undefined;
      const wantLogprobs = record.params.logprobs !== undefined;
      this.emit(record, {
        requestId, text: reply.text, tokenIds: got.map((g) => g.token),
        ...(wantLogprobs ? { logprobs: got.map((g) => ({ token: g.token, logprob: g.logprob!, ...(g.top ? { top: g.top } : {}) })) } : {}),
      });
      if (stopMatched) {
        this.scheduler.tell({ type: 'abort', requestId, reason: 'stop' });
        this.finish(record, 'stop', reply.stop!);
      } else if (reply.stop !== null && reason !== undefined) {
        this.finish(record, 'stop', reply.stop);
      }
    }
    for (const [requestId, reason] of ending) {
      const record = this.records.get(requestId);
      if (record) this.finish(record, reason, stopTokens.get(requestId));
    }
  }

  /**
   * The detokenizer could not take this step's tokens (it is restarting).
   * They are not accepted: the record drops them, and the request is
   * recomputed from what was accepted (seeded and greedy sampling give the
   * same tokens again), by this scheduler or, if it is restarting too, by the
   * next one through resubmit-all.
   */
  private requeue(record: RequestRecord, dropped: number): void {
    record.outputTokens.length -= dropped;
    if (record.logprobs.length > record.outputTokens.length) record.logprobs.length = record.outputTokens.length;
    this.scheduler.tell({ type: 'abort', requestId: record.id, reason: 'abort' });
    this.scheduler.tell({ type: 'add', requests: [toEngineRequest(record)] });
  }

  /**
   * Pushes tokens through the detokenizer; a fresh detokenizer (after a
   * restart) gets the request's state rebuilt first. 'unavailable' when the
   * detokenizer is not there: the front never waits for a restart, since the
   * restarting scheduler needs the front's answer to come back up.
   * 'refused' when it cannot serve this request at all.
   */
  private async detokenize(record: RequestRecord, tokens: number[], final: boolean): Promise<{ text: string; stop: string | null } | 'unavailable' | 'refused'> {
    const add = () => this.detokenizer.ask<DeltaReply>((replyTo) => ({ type: 'add', requestId: record.id, tokenIds: tokens, final, replyTo }), { timeoutMs: 30_000 });
    try {
      let reply = await add();
      if (!reply.ok) {
        // replay what was already sent, silently, then add again
        const replayTokens = record.outputTokens.slice(0, record.outputTokens.length - tokens.length);
        this.detokenizer.tell({ type: 'create', requestId: record.id, params: detokenizeParams(record.params), replayTokens });
        reply = await add();
        if (!reply.ok) {
          console.error(`[troupe] the detokenizer refused request ${record.id}: ${reply.error.message}; the request ends`);
          return 'refused';
        }
      }
      return { text: reply.delta, stop: reply.stop };
    } catch (error) {
      if (error instanceof ActorStoppedError || error instanceof AskTimeoutError) return 'unavailable';
      throw error;
    }
  }

  private emit(record: RequestRecord, delta: RequestDelta): void {
    record.sentText += delta.text;
    record.deltas.next(delta);
  }

  /** `stopReason`: the stop string or stop token id that ended it, if one did. */
  private finish(record: RequestRecord, reason: FinishReason, stopReason?: string | number): void {
    if (record.finishReason) return;
    record.finishReason = reason;
    this.records.delete(record.id);
    this.detokenizer.tell({ type: 'free', requestId: record.id });
    const last: RequestDelta = {
      requestId: record.id, text: '', tokenIds: [], finishReason: reason, cachedTokens: record.cachedTokens,
      ...(stopReason !== undefined ? { stopReason } : {}),
    };
    if (record.params.promptLogprobs !== undefined) {
      last.promptLogprobs = record.promptTokens.map((_, i) => record.promptLogprobs[i] ?? null);
    }
    record.deltas.next(last);
    record.deltas.complete();
    this.publish(finishedEvent(record, reason));
  }

  private publish(event: RequestEvent): void {
    for (const subscriber of this.subscribers) subscriber.tell(event);
  }
}

function finishedEvent(record: RequestRecord, reason: FinishReason): RequestEvent {
  return {
    type: 'finished', requestId: record.id, reason, outputTokens: record.outputTokens.length,
    promptTokens: record.promptTokens.length, maxTokens: record.params.maxTokens ?? 0, n: record.params.n ?? 1,
    times: {
      submittedMs: record.submittedMs,
      ...(record.scheduledMs !== undefined ? { scheduledMs: record.scheduledMs } : {}),
      ...(record.firstTokenMs !== undefined ? { firstTokenMs: record.firstTokenMs } : {}),
      finishedMs: performance.timeOrigin + performance.now(),
    },
  };
}

function toEngineRequest(record: RequestRecord): EngineRequest {
  return {
    id: record.id, promptTokens: record.promptTokens, outputTokens: [...record.outputTokens],
    params: record.params, seed: record.seed, eosTokenIds: record.eosTokenIds,
  };
}

function detokenizeParams(params: GenerationParams) {
  return {
    skipSpecialTokens: params.skipSpecialTokens ?? true,
    stop: stopStrings(params),
    includeStopStrInOutput: params.includeStopStrInOutput ?? false,
    minTokens: params.minTokens ?? 0,
  };
}
