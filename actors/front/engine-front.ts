// The engine front: the engine's one door (protocol.ts) and the owner of the
// request records, above the engine subtree, so a restart below it loses
// nothing. It admits requests (admission.ts: validated and tokenized once),
// hands them to the scheduler, turns the scheduler's tokens into text deltas
// through the detokenizer (one batched ask per engine step, for every request
// in it), and sends each client one message per step with its deltas.
//
// Exactly-once deltas across restarts: a token is accepted only at the next
// output index the record expects, and the detokenizer's state is rebuilt by
// replaying the tokens already accepted (which re-yields exactly the text
// already sent, discarded), so the stream continues where it left off.
//
// Every accepted request ends: with its finish reason, or, when the engine
// cannot make progress (engine-availability.ts) or this front stops, with a
// 'failed' message (code 'unavailable').
import { Actor, ActorStoppedError, AskTimeoutError, type ActorRef, type Signal } from '../../runtime/index.js';
import { DEFAULT_ENGINE_RECOVERY_TIMEOUT_MS, EngineAvailability, EngineUnavailableError, type EngineState } from './engine-availability.js';
import { MAX_N, stopStrings, type GenerationParams } from '../engine/request-params.js';
import type { DeltaReply, DetokenizerMessage } from '../detokenizer/messages.js';
import type { FrontMessage, GeneratedToken, PromptLogprobChunk, RequestEvent } from '../messages/front.js';
import type { EngineRequest, SchedulerMessage } from '../messages/scheduler.js';
import type { FinishReason } from '../scheduler/request.js';
import type { FinishedRequest } from '../scheduler/scheduler.js';
import { RequestRecord, type RequestDelta } from './request-record.js';
import { admit, type CompileGrammar } from './admission.js';
import { grammarEngineFor, type GrammarEngineOptions } from '../grammar/grammar-engine.js';
import { choiceIds, type ClientMessage, type EngineError, type FrontRequest, type SubmitReply, type SubmitRequest } from './protocol.js';
import type { TokenizeReply, TokenizerMessage } from '../tokenizer/messages.js';
import { emptyTimings, nowMs } from '../engine/step-timings.js';

export interface EngineFrontOptions {
  schedulerPath: string;
  detokenizerPath: string;
  tokenizerPath: string;
  vocabSize: number;
  maxModelLen: number;
  /** eos ids from generation_config.json (else config.json). */
  eosTokenIds: number[];
  /** The model grammars are compiled against (requests with structuredOutput); absent: such requests are refused. */
  grammar?: GrammarEngineOptions & { modelDir: string };
  /** How long requests wait for a stopped engine to come back before they end with a 503 (default 120 s). */
  recoveryTimeoutMs?: number;
}

interface DetokenizedText {
  text: string;
  /** The stop string the text ended at, if it did. */
  stop: string | null;
}

export class EngineFront extends Actor<FrontMessage | FrontRequest> {
  private readonly records = new Map<string, RequestRecord>();
  /** Ids of requests being admitted (tokenizing): taken, not yet records. */
  private readonly admitting = new Set<string>();
  private readonly subscribers: ActorRef<RequestEvent>[] = [];
  private readonly clients = new Map<string, ActorRef<ClientMessage>>();
  /** Deltas for each client (by path), sent together when the message at hand is handled. */
  private readonly outbox = new Map<string, RequestDelta[]>();
  private tokenizer!: ActorRef<TokenizerMessage>;
  private scheduler!: ActorRef<SchedulerMessage>;
  private detokenizer!: ActorRef<DetokenizerMessage>;
  private readonly availability: EngineAvailability;
  private stopped = false;
  /** The front's share of the step time split: front and detokenizer (step-timings.ts). */
  private readonly timings = emptyTimings();

  constructor(private readonly options: EngineFrontOptions) {
    super();
    this.availability = new EngineAvailability(options.recoveryTimeoutMs ?? DEFAULT_ENGINE_RECOVERY_TIMEOUT_MS, (error) => {
      this.failAll(error);
      this.announceState();
    });
  }

  private get engineState(): EngineState {
    return this.stopped ? { state: 'unavailable', why: 'the engine front stopped' } : this.availability.status;
  }

  /** Tells every client the engine's state (it changed). */
  private announceState(): void {
    for (const client of this.clients.values()) client.tell({ type: 'engine-state', state: this.engineState });
  }

  override onSignal(signal: Signal): void {
    if (signal.type === 'terminated' && signal.ref.path === this.options.schedulerPath) {
      this.availability.down(`the scheduler stopped (${signal.reason.kind})`);
      this.announceState();
      return;
    }
    super.onSignal(signal);
  }

  override postStop(): void {
    this.stopped = true;
    this.availability.stop();
    this.failAll(new EngineUnavailableError('the engine front stopped'));
    this.announceState();
  }

  /** Ends every request with `error` (their streams error; the scheduler forgets them). */
  private failAll(error: EngineUnavailableError): void {
    for (const record of [...this.records.values()]) {
      if (record.finishReason) continue;
      record.finishReason = 'abort';
      this.records.delete(record.id);
      this.scheduler?.tell({ type: 'abort', requestId: record.id, reason: 'abort' });
      this.detokenizer?.tell({ type: 'free', requestId: record.id });
      this.flushTo(record.client);
      record.client.tell({ type: 'failed', requestId: record.id, error: { code: 'unavailable', field: null, message: error.message } });
      this.publish(finishedEvent(record, 'abort'));
    }
  }

  override preStart(): void {
    this.scheduler = this.context.system.refFor(this.options.schedulerPath);
    this.detokenizer = this.context.system.refFor(this.options.detokenizerPath);
    this.tokenizer = this.context.system.refFor(this.options.tokenizerPath);
  }

  /** Compiles into this process's grammar engine, whose cache the scheduler's matchers then hit. */
  private grammarCompiler(): CompileGrammar | undefined {
    const grammar = this.options.grammar;
    if (!grammar) return undefined;
    return async (spec, field) => {
      await (await grammarEngineFor(grammar.modelDir, grammar)).compile(spec, field);
    };
  }

  /**
   * Admits a submit beside the mailbox (tokenizing must not hold up the
   * engine's steps), then records its choices and hands them to the scheduler.
   */
  private async submit(request: SubmitRequest, replyTo: ActorRef<SubmitReply>): Promise<void> {
    const refuse = (error: EngineError) => replyTo.tell({ ok: false, error });
    const unavailable = this.stopped ? new EngineUnavailableError('the engine front stopped') : this.availability.refusal();
    if (unavailable) return refuse({ code: 'unavailable', field: null, message: unavailable.message });
    const n = request.params?.n ?? 1;
    // (an n out of range is refused by admit; its ids are not reserved)
    const ids = Number.isInteger(n) && n >= 1 && n <= MAX_N ? choiceIds(request.requestId, n) : [];
    const taken = [request.requestId, ...ids].find((id) => this.records.has(id) || this.admitting.has(id));
    if (taken !== undefined) return refuse({ code: 'duplicate_id', field: 'requestId', message: `request id "${taken}" is already in use` });
    for (const id of ids) this.admitting.add(id);
    let admitted;
    try {
      admitted = await admit(request, { vocabSize: this.options.vocabSize, maxModelLen: this.options.maxModelLen }, (prompt, options) =>
        this.tokenizer.ask<TokenizeReply>((to) => ({ type: 'tokenize', prompt, ...(options ? { options } : {}), replyTo: to }), { timeoutMs: 60_000 }),
      this.grammarCompiler());
    } catch (error) {
      admitted = { code: 'internal', field: null, message: (error as Error).message } satisfies EngineError;
    } finally {
      for (const id of ids) this.admitting.delete(id);
    }
    if ('code' in admitted) return refuse(admitted);
    if (this.stopped) return refuse({ code: 'unavailable', field: null, message: 'the engine front stopped' });
    replyTo.tell({ ok: true, requestIds: admitted.choices.map((c) => c.id), promptTokenIds: admitted.promptTokenIds, promptText: admitted.promptText, maxTokens: admitted.maxTokens });
    const records = admitted.choices.map((choice) => {
      const record = new RequestRecord(choice.id, admitted.promptTokenIds, choice.params, choice.seed, this.options.eosTokenIds, request.client);
      this.records.set(choice.id, record);
      this.publish({ type: 'submitted', requestId: choice.id, promptTokens: admitted.promptTokenIds.length });
      this.detokenizer.tell({ type: 'create', requestId: choice.id, params: detokenizeParams(choice.params) });
      return record;
    });
    // If the scheduler is restarting, the send fails; the fresh scheduler collects the requests with resubmit-all.
    this.scheduler.send({ type: 'add', requests: records.map(toEngineRequest) }).catch(() => undefined);
  }

  /** The client went away (or asked to stop): the request ends now and its blocks are freed. */
  private abort(id: string): void {
    const record = this.records.get(id);
    if (!record) return;
    this.scheduler.tell({ type: 'abort', requestId: id, reason: 'abort' });
    this.finish(record, 'abort');
  }

  async receive(message: FrontMessage | FrontRequest): Promise<void> {
    const started = nowMs();
    const detokenizerMs = this.timings.detokenizerMs;
    await this.handle(message);
    this.flush();
    if (message.type === 'step-output') this.timings.frontMs += nowMs() - started - (this.timings.detokenizerMs - detokenizerMs);
  }

  private async handle(message: FrontMessage | FrontRequest): Promise<void> {
    switch (message.type) {
      case 'connect':
        this.clients.set(message.client.path, message.client);
        message.replyTo.tell(this.engineState);
        return;
      case 'submit': {
        const { type: _type, replyTo, ...request } = message;
        void this.submit(request, replyTo).catch((error: Error) => {
          // a last line: the front carries on, the client hears why
          console.error(`[troupe] front: submit ${request.requestId} failed: ${error.stack ?? error.message}`);
          replyTo.tell({ ok: false, error: { code: 'internal', field: null, message: error.message } });
        }).finally(() => this.flush());
        return;
      }
      case 'abort':
        return this.abort(message.requestId);
      case 'step-output':
        if (message.step) this.onStep(message.step);
        return this.onStepOutput(message.tokens, message.promptLogprobs, message.finished);
      case 'timings':
        message.replyTo.tell({ ...this.timings });
        return;
      case 'resubmit-all': {
        // a scheduler is up: the engine makes progress again until it stops
        this.availability.up();
        this.announceState();
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
    });
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
        if (reply.ok) return { text: reply.delta, stop: reply.stop };
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
    this.queue(record, delta);
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
    this.queue(record, last);
    this.publish(finishedEvent(record, reason));
  }

  private queue(record: RequestRecord, delta: RequestDelta): void {
    const box = this.outbox.get(record.client.path);
    if (box) box.push(delta);
    else {
      this.outbox.set(record.client.path, [delta]);
      this.clients.set(record.client.path, record.client);
    }
  }

  /** Sends every client its deltas: one message each. */
  private flush(): void {
    for (const [path, deltas] of this.outbox) this.clients.get(path)?.tell({ type: 'deltas', deltas });
    this.outbox.clear();
  }

  /** Sends one client's deltas now (before a message that must come after them). */
  private flushTo(client: ActorRef<ClientMessage>): void {
    const deltas = this.outbox.get(client.path);
    if (!deltas) return;
    this.outbox.delete(client.path);
    client.tell({ type: 'deltas', deltas });
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
