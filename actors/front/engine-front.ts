// The engine front: owns the request records, above the engine subtree, so a
// restart below it loses nothing. It hands requests to the scheduler, turns
// the scheduler's tokens into text deltas through the detokenizer (one
// batched ask per engine step, for every request in it), and streams them to
// subscribers (an rxjs Subject per request).
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
import { RequestRecord, type RequestDelta } from './request-record.js';
import { emptyTimings, nowMs } from '../engine/step-timings.js';

export interface EngineFrontOptions {
  schedulerPath: string;
  detokenizerPath: string;
  /** How long requests wait for a stopped engine to come back before they end with a 503 (default 120 s). */
  recoveryTimeoutMs?: number;
}

interface DetokenizedText {
  text: string;
  stopMatched: boolean;
}

export class EngineFront extends Actor<FrontMessage> {
  private readonly records = new Map<string, RequestRecord>();
  private readonly subscribers: ActorRef<RequestEvent>[] = [];
  private scheduler!: ActorRef<SchedulerMessage>;
  private detokenizer!: ActorRef<DetokenizerMessage>;
  private readonly availability: EngineAvailability;
  private stopped = false;
  /** The front's share of the step time split: front, detokenizer, gateway (step-timings.ts). */
  private readonly timings = emptyTimings();

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
      this.publish({ type: 'finished', requestId: record.id, reason: 'abort', outputTokens: record.outputTokens.length });
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
      case 'step-output': {
        const started = nowMs();
        const inner = this.timings.detokenizerMs + this.timings.gatewayMs;
        await this.onStepOutput(message.tokens, message.promptLogprobs, message.finished);
        this.timings.frontMs += nowMs() - started - (this.timings.detokenizerMs + this.timings.gatewayMs - inner);
        return;
      }
      case 'timings':
        message.replyTo.tell({ ...this.timings });
        return;
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

  private async onStepOutput(tokens: GeneratedToken[], promptLogprobs: PromptLogprobChunk[], finished: { requestId: string; reason: FinishReason }[]): Promise<void> {
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
      record.outputTokens.push(token.token);
      if (token.logprob !== undefined) record.logprobs.push({ token: token.token, logprob: token.logprob, ...(token.top ? { top: token.top } : {}) });
      fresh.set(token.requestId, [...(fresh.get(token.requestId) ?? []), token]);
    }
    const ending = new Map(finished.map((f) => [f.requestId, f.reason]));
    const batch = [...fresh].map(([requestId, got]) => ({ record: this.records.get(requestId)!, got, reason: ending.get(requestId) }));
    const asked = nowMs();
    const replies = await this.detokenize(batch.map(({ record, got, reason }) => ({ record, tokenIds: got.map((g) => g.token), final: reason !== undefined })));
    this.timings.detokenizerMs += nowMs() - asked;
    batch.forEach(({ record, got, reason }, i) => {
      const requestId = record.id;
      const reply = replies === 'unavailable' ? 'unavailable' : replies[i]!;
      // A request can finish while the step's tokens are being detokenized
      // (a client hanging up aborts it): its record is gone, nothing more to send.
      if (this.records.get(requestId) !== record) {
        ending.delete(requestId);
        return;
      }
      if (reply === 'unavailable') {
        this.requeue(record, got.length);
        ending.delete(requestId);
        return;
      }
      if (reply === 'refused') {
        // one request the detokenizer cannot serve ends; the front and the others carry on
        this.scheduler.tell({ type: 'abort', requestId, reason: 'abort' });
        this.finish(record, 'abort');
        ending.delete(requestId);
        return;
      }
      const stopMatched = reply.stopMatched && reason === undefined;
      const wantLogprobs = record.params.logprobs !== undefined;
      this.emit(record, {
        requestId, text: reply.text, tokenIds: got.map((g) => g.token),
        ...(wantLogprobs ? { logprobs: got.map((g) => ({ token: g.token, logprob: g.logprob!, ...(g.top ? { top: g.top } : {}) })) } : {}),
      });
      if (stopMatched) {
        this.scheduler.tell({ type: 'abort', requestId, reason: 'stop' });
        this.finish(record, 'stop');
      } else if (reply.stopMatched && reason !== undefined) {
        this.finish(record, 'stop');
      }
    });
    for (const [requestId, reason] of ending) {
      const record = this.records.get(requestId);
      if (record) this.finish(record, reason);
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
   * Pushes one step's tokens, every request's at once, through the
   * detokenizer; a request a fresh detokenizer (after a restart) has no state
   * for gets its state rebuilt, then its tokens are added again. 'unavailable'
   * when the detokenizer is not there: the front never waits for a restart,
   * since the restarting scheduler needs the front's answer to come back up.
   * 'refused' for a request it cannot serve at all.
   */
  private async detokenize(items: { record: RequestRecord; tokenIds: number[]; final: boolean }[]): Promise<(DetokenizedText | 'refused')[] | 'unavailable'> {
    if (items.length === 0) return [];
    const addBatch = (batch: typeof items) => this.detokenizer.ask<DeltaReply[]>((replyTo) => ({
      type: 'add-batch', items: batch.map(({ record, tokenIds, final }) => ({ requestId: record.id, tokenIds, final })), replyTo,
    }), { timeoutMs: 30_000 });
    try {
      const replies = await addBatch(items);
      // (a request that ended meanwhile gets no state again: nothing would free it)
      const missing = items.flatMap((item, i) => (replies[i]!.ok || this.records.get(item.record.id) !== item.record ? [] : [i]));
      if (missing.length) {
        // replay what was already sent, silently, then add again
        for (const i of missing) {
          const { record, tokenIds } = items[i]!;
          const replayTokens = record.outputTokens.slice(0, record.outputTokens.length - tokenIds.length);
          this.detokenizer.tell({ type: 'create', requestId: record.id, params: detokenizeParams(record.params), replayTokens });
        }
        const again = await addBatch(missing.map((i) => items[i]!));
        missing.forEach((i, k) => (replies[i] = again[k]!));
      }
      return replies.map((reply, i) => {
        if (reply.ok) return { text: reply.delta, stopMatched: reply.stop !== null };
        if (this.records.get(items[i]!.record.id) === items[i]!.record) console.error(`[troupe] the detokenizer refused request ${items[i]!.record.id}: ${reply.error.message}; the request ends`);
        return 'refused';
      });
    } catch (error) {
      if (error instanceof ActorStoppedError || error instanceof AskTimeoutError) return 'unavailable';
      throw error;
    }
  }

  private emit(record: RequestRecord, delta: RequestDelta): void {
    record.sentText += delta.text;
    const started = nowMs();
    record.deltas.next(delta);
    this.timings.gatewayMs += nowMs() - started;
  }

  private finish(record: RequestRecord, reason: FinishReason): void {
    if (record.finishReason) return;
    record.finishReason = reason;
    this.records.delete(record.id);
    this.detokenizer.tell({ type: 'free', requestId: record.id });
    const last: RequestDelta = { requestId: record.id, text: '', tokenIds: [], finishReason: reason };
    if (record.params.promptLogprobs !== undefined) {
      last.promptLogprobs = record.promptTokens.map((_, i) => record.promptLogprobs[i] ?? null);
    }
    const started = nowMs();
    record.deltas.next(last);
    record.deltas.complete();
    this.timings.gatewayMs += nowMs() - started;
    this.publish({ type: 'finished', requestId: record.id, reason, outputTokens: record.outputTokens.length });
  }

  private publish(event: RequestEvent): void {
    for (const subscriber of this.subscribers) subscriber.tell(event);
  }
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
