// The scheduler's actor: a thin shell that runs the engine loop around the
// plain Scheduler class (schedule -> rank step -> update -> tell the front).
// A step message carries only what changed for the ranks' persistent batch
// (rank-batch-mirror.ts); a fresh incarnation's first step resets them.
//
// It watches the ranks. If a rank dies, the KV cache died with it, so this
// actor fails on purpose: its supervisor restarts it (and what follows it),
// and the fresh incarnation asks the front for every unfinished request and
// recomputes them from their tokens so far.
//
// Grammars: a request with `structuredOutput` gets a matcher when it is
// added (its output tokens so far replayed into it), kept in its request
// record. When a step comes back, each grammar row's matcher accepts its
// token at once, and the row's mask for its next step is computed then, as
// that step is built (only rows with a grammar pay for a mask). A grammar
// that completes ends its request with "stop".
//
// Pipeline parallelism: up to `pipelineDepth` steps (one per stage) are in
// flight at once, with disjoint requests (the Scheduler never schedules a
// request whose step has not come back), so no stage idles. A step goes to
// every rank of the first stage; the reply comes from the last stage.
import { Actor, type ActorRef, type Signal } from '../../runtime/index.js';
import { DEFAULT_MAX_TOKENS } from '../engine/request-params.js';
import type { FrontMessage, GeneratedToken, PromptLogprobChunk } from '../messages/front.js';
import { emptyTimings, nowMs } from '../engine/step-timings.js';
import type { RankBatchDelta, RankInfo, RankMessage, RankScheduled, RankSequenceResult, RankStepReply } from '../messages/rank.js';
import type { EngineRequest, SchedulerMessage } from '../messages/scheduler.js';
import { grammarEngineFor, type GrammarEngine, type GrammarEngineOptions } from '../grammar/grammar-engine.js';
import type { SequenceGrammar } from '../grammar/sequence-grammar.js';
import { RankBatchMirror } from './rank-batch-mirror.js';
import { Scheduler, type SchedulerConfig, type StepPlan } from './scheduler.js';

export interface SchedulerActorOptions {
  config: SchedulerConfig;
  frontPath: string;
  /** The rank that is asked (rank 0 of the first stage). */
  rankPath: string;
  /** The first stage's other tensor ranks: each gets the same step. */
  peerPaths?: string[];
  /** Every rank of the group: the death of any one restarts the engine. */
  watchPaths?: string[];
  /** Steps in flight at once (the pipeline size; default 1). */
  pipelineDepth?: number;
  /** A backstop only: a dead rank is noticed through death watch at once. */
  stepTimeoutMs?: number;
  /** The model whose vocabulary grammars are compiled against (requests with structuredOutput). */
  grammar?: GrammarEngineOptions & { modelDir: string };
}

export class SchedulerActor extends Actor<SchedulerMessage> {
  private readonly scheduler: Scheduler<EngineRequest>;
  /** What the ranks hold of the batch: each step sends only what changed. */
  private readonly rankBatch: RankBatchMirror<EngineRequest>;
  private front!: ActorRef<FrontMessage>;
  private rank!: ActorRef<RankMessage>;
  private peers: ActorRef<RankMessage>[] = [];
  private watched = new Set<string>();
  private steps = 0;
  private inFlight = 0;
  private maxInFlight = 0;
  private stopped = false;
  /** Requests whose matchers are being made (a grammar being compiled); an abort meanwhile drops them. */
  private readonly pendingGrammar = new Set<string>();
  private readonly timings = emptyTimings();

  constructor(private readonly options: SchedulerActorOptions) {
    super();
    this.scheduler = new Scheduler<EngineRequest>(options.config);
    this.rankBatch = new RankBatchMirror(this.scheduler);
  }

  override async preStart(): Promise<void> {
    const { system } = this.context;
    this.front = system.refFor(this.options.frontPath);
    this.rank = system.refFor(this.options.rankPath);
    this.peers = (this.options.peerPaths ?? []).map((p) => system.refFor<RankMessage>(p));
    const paths = [...new Set([this.options.rankPath, ...(this.options.watchPaths ?? [])])];
    // After a crash the rank group restarts on its own (one_for_all): wait until
    // every rank answers, so this incarnation does not watch a rank that is not
    // back yet (and fail again at once, over and over).
    if (paths.length > 1) await this.ranksAnswer(paths);
    for (const path of paths) {
      this.watched.add(path);
      this.context.watch(system.refFor(path));
    }
    const unfinished = await this.front.ask<EngineRequest[]>((replyTo) => ({ type: 'resubmit-all', replyTo }), { timeoutMs: 30_000 });
    this.add(unfinished);
  }

  private async ranksAnswer(paths: string[], deadlineMs = 300_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (const path of paths) {
      for (;;) {
        try {
          await this.context.system.refFor<RankMessage>(path).ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 2_000 });
          break;
        } catch (error) {
          if (Date.now() > until) throw new Error(`rank ${path} did not come back within ${deadlineMs} ms: ${(error as Error).message}`);
          // stopped or killed while waiting (the engine went away): stop asking
          const self = this.context.system.placementOf(this.context.self);
          if (self?.incarnation !== this.context.incarnation) throw new Error(`the scheduler stopped while waiting for rank ${path}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }
  }

  receive(message: SchedulerMessage): void {
    switch (message.type) {
      case 'add':
        return this.add(message.requests);
      case 'abort':
        this.pendingGrammar.delete(message.requestId);
        this.scheduler.request(message.requestId)?.grammar?.dispose();
        this.scheduler.abort(message.requestId, message.reason);
        return;
      case 'stats':
        message.replyTo.tell({ ...this.scheduler.stats(), steps: this.steps, maxInFlight: this.maxInFlight, timings: { ...this.timings } });
        return;
      case 'reset-prefix-cache':
        message.replyTo.tell(this.scheduler.kv.pool.resetPrefixCache());
        return;
      case 'fail':
        throw new Error(message.why);
    }
  }

  override onSignal(signal: Signal): void | Promise<void> {
    if (signal.type === 'terminated' && this.watched.has(signal.ref.path)) {
      throw new Error(`rank ${signal.ref.path} stopped (${signal.reason.kind}); every unfinished request will be recomputed`);
    }
    return super.onSignal(signal);
  }

  override postStop(): void {
    this.stopped = true;
  }

  private add(requests: EngineRequest[]): void {
    const plain = requests.filter((r) => r.params.structuredOutput === undefined);
    const constrained = requests.filter((r) => r.params.structuredOutput !== undefined && !this.pendingGrammar.has(r.id));
    for (const r of plain) this.addChecked(r);
    if (constrained.length > 0) void this.addWithGrammars(constrained);
    this.kick();
  }

  private addChecked(r: EngineRequest, grammar?: SequenceGrammar): void {
    if (this.scheduler.has(r.id)) { // a resubmission raced a direct add
      grammar?.dispose();
      return;
    }
    try {
      this.addOne(r, grammar);
    } catch (error) {
      grammar?.dispose();
      this.refuse(r.id, (error as Error).message);
    }
  }

  /** The front validates (and compiles) first; this is a last line, never a crash of the scheduler. */
  private refuse(requestId: string, why: string): void {
    console.error(`[troupe] scheduler refused request ${requestId}: ${why}`);
    this.front.tell({ type: 'step-output', tokens: [], promptLogprobs: [], finished: [{ requestId, reason: 'abort' }] });
  }

  /** Makes each request's matcher (compiling its grammar unless cached), replays its tokens so far, then adds it. */
  private async addWithGrammars(requests: EngineRequest[]): Promise<void> {
    for (const r of requests) this.pendingGrammar.add(r.id);
    let engine: GrammarEngine;
    try {
      if (!this.options.grammar) throw new Error('this scheduler was started without a grammar engine');
      engine = await grammarEngineFor(this.options.grammar.modelDir, this.options.grammar);
    } catch (error) {
      for (const r of requests) if (this.pendingGrammar.delete(r.id)) this.refuse(r.id, `grammar engine: ${(error as Error).message}`);
      return;
    }
    for (const r of requests) {
      let grammar: SequenceGrammar | undefined;
      try {
        const spec = r.params.structuredOutput!;
        grammar = engine.matcher(engine.cached(spec) ?? await engine.compile(spec));
        if (!grammar.replay(r.outputTokens)) throw new Error('its tokens so far do not match its grammar');
      } catch (error) {
        grammar?.dispose();
        if (this.pendingGrammar.delete(r.id)) this.refuse(r.id, `grammar: ${(error as Error).message}`);
        continue;
      }
      // aborted meanwhile, or this incarnation stopped: nothing to add
      if (!this.pendingGrammar.delete(r.id) || this.stopped) {
        grammar.dispose();
        continue;
      }
      this.addChecked(r, grammar);
    }
    this.kick();
  }

  private addOne(r: EngineRequest, grammar?: SequenceGrammar): void {
    this.scheduler.add({
      id: r.id,
      promptTokens: r.promptTokens,
      outputTokens: r.outputTokens,
      stop: {
        maxTokens: r.params.maxTokens ?? DEFAULT_MAX_TOKENS,
        minTokens: r.params.minTokens ?? 0,
        eosTokenIds: r.eosTokenIds,
        ignoreEos: r.params.ignoreEos ?? false,
        stopTokenIds: r.params.stopTokenIds ?? [],
      },
      priority: r.params.priority ?? 0,
      skipPrefixCache: r.params.promptLogprobs !== undefined,
      sampling: r,
      ...(grammar ? { grammar } : {}),
    });
  }

  /** Starts steps while there is room in the pipeline and something to run. */
  private kick(): void {
    const depth = this.options.pipelineDepth ?? 1;
    while (!this.stopped && this.inFlight < depth && this.scheduler.hasWork) {
      const started = nowMs();
      const plan = this.scheduler.schedule(this.scheduler.pipelineShare(depth));
      if (plan.sequences.length === 0) return; // nothing can run until something is added, freed or comes back
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      // the deltas are built in the order the steps go out: the ranks apply them in that order
      const { batch, sequences } = this.rankBatch.step(plan.sequences);
      void this.run(plan, batch, sequences, started);
    }
  }

  private async run(plan: StepPlan<EngineRequest>, batch: RankBatchDelta, sequences: RankScheduled[], started: number): Promise<void> {
    const step = this.steps++;
    const startedMs = performance.timeOrigin + performance.now();
    try {
      const sent = nowMs();
      const reply = await this.rank.ask<RankStepReply>((replyTo) => {
        const message: RankMessage = { type: 'step', step, batch, sequences, replyTo };
        for (const peer of this.peers) peer.tell({ ...message, sequences: withOwnMasks(sequences) });
        return message;
      }, { timeoutMs: this.options.stepTimeoutMs ?? 600_000 });
      if (this.stopped) return;
      const received = nowMs();
      this.apply(plan, reply.results, startedMs);
      const done = nowMs();
      const t = this.timings;
      t.steps++;
      t.rows += plan.sequences.length;
      t.stepMs += done - started;
      t.nativeMs += reply.nativeMs;
      t.schedulerMs += (sent - started) + (done - received);
    } catch (error) {
      if (!this.stopped) this.context.self.tell({ type: 'fail', why: `engine step failed: ${(error as Error).message}` });
      return;
    } finally {
      this.inFlight--;
    }
    this.kick();
  }

  private apply(plan: StepPlan<EngineRequest>, results: RankSequenceResult[], startedMs: number): void {
    const sampled = new Map<string, number>();
    const byId = new Map(results.map((r) => [r.requestId, r]));
    for (const r of results) if (r.token !== undefined) sampled.set(r.requestId, r.token);
    const tokens: GeneratedToken[] = [];
    const promptLogprobs: PromptLogprobChunk[] = [];
    for (const seq of plan.sequences) {
      const result = byId.get(seq.requestId);
      if (result?.promptLogprobs) {
        promptLogprobs.push({ requestId: seq.requestId, start: seq.cachedTokens, values: result.promptLogprobs, ...(result.promptTop ? { top: result.promptTop } : {}) });
      }
    }
    const grammars = new Map<string, SequenceGrammar>();
    for (const seq of plan.sequences) {
      const g = this.scheduler.request(seq.requestId)?.grammar;
      if (g) grammars.set(seq.requestId, g);
    }
    const outputIndex = new Map(plan.sequences.map((s) => [s.requestId, s.outputIndex]));
    const update = this.scheduler.update(plan, sampled);
    this.advanceGrammars(grammars, update);
    for (const { requestId, token, cachedTokens } of update.appended) {
      const result = byId.get(requestId)!;
      tokens.push({
        requestId, token, outputIndex: outputIndex.get(requestId)!, ...(result.logprob !== undefined ? { logprob: result.logprob } : {}), ...(result.top ? { top: result.top } : {}),
        ...(cachedTokens !== undefined ? { cachedTokens } : {}),
      });
    }
    this.front.tell({
      type: 'step-output', tokens, promptLogprobs, finished: update.finished,
      step: { numBatchedTokens: plan.numBatchedTokens, startedMs, admitted: plan.admitted },
    });
  }

  /**
   * Each grammar row's matcher accepts its new token. A finished request's
   * matcher is released; one whose grammar completed (or, never expected,
   * refused the token its own mask allowed) ends with "stop".
   */
  private advanceGrammars(grammars: Map<string, SequenceGrammar>, update: ReturnType<Scheduler<EngineRequest>['update']>): void {
    if (grammars.size === 0) return;
    const finished = new Set(update.finished.map((f) => f.requestId));
    for (const { requestId, token } of update.appended) {
      const g = grammars.get(requestId);
      if (!g || finished.has(requestId)) continue;
      const accepted = g.accept(token);
      if (!accepted || g.terminated) {
        if (!accepted) console.error(`[troupe] request ${requestId}: its grammar refused token ${token}; ending it`);
        this.scheduler.abort(requestId, 'stop');
        update.finished.push({ requestId, reason: 'stop' });
        finished.add(requestId);
      }
    }
    for (const id of finished) grammars.get(id)?.dispose();
  }
}

/**
 * The sequences with copies of their grammar masks: a message that crosses a
 * thread transfers (detaches) its typed arrays, so each rank's copy of a step
 * needs masks of its own.
 */
function withOwnMasks(sequences: RankScheduled[]): RankScheduled[] {
  if (!sequences.some((s) => s.mask)) return sequences;
  return sequences.map((s) => (s.mask ? { ...s, mask: s.mask.slice() } : s));
}
