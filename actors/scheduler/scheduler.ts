// The scheduler: a plain synchronous class. Each call to schedule() decides
// one engine step; update() applies the step's sampled tokens. The actor
// around it (scheduler-actor.ts) only moves messages.
import { BlockPool } from './block-pool.js';
import { KvBlocks, type PrefixHit } from './kv-blocks.js';
import { SchedulerRequest, type FinishReason, type NewRequest } from './request.js';

export type SchedulingPolicy = 'fcfs' | 'priority';

export interface SchedulerConfig {
  /** Token budget of one step (vLLM's --max-num-batched-tokens). */
  maxNumBatchedTokens: number;
  /** Requests running at once (--max-num-seqs). */
  maxNumSeqs: number;
  maxModelLen: number;
  blockSize: number;
  numBlocks: number;
  policy?: SchedulingPolicy;
  enablePrefixCaching?: boolean;
}

/** One request's share of a step. */
export interface ScheduledSequence<S = unknown> {
  requestId: string;
  /** The tokens this step computes: positions [cachedTokens, cachedTokens + tokens.length). */
  tokens: number[];
  cachedTokens: number;
  /** The step reaches the end of the request's tokens: sample its next token. */
  sample: boolean;
  /** How many tokens have been generated before this step (the sampler's counter for seeded randomness). */
  outputIndex: number;
  sampling: S | undefined;
}

export interface StepPlan<S = unknown> {
  sequences: ScheduledSequence<S>[];
  numBatchedTokens: number;
  /** Requests preempted (freed, to be recomputed) while building this plan. */
  preempted: string[];
}

export interface StepUpdate {
  /** Tokens appended this step, by request. */
  appended: { requestId: string; token: number }[];
  finished: { requestId: string; reason: FinishReason }[];
}

export interface SchedulerStats {
  running: number;
  waiting: number;
  kvUsage: number;
  preemptions: number;
  prefixQueries: number;
  prefixHits: number;
}

export class Scheduler<S = unknown> {
  readonly kv: KvBlocks;
  private readonly waiting: SchedulerRequest<S>[] = [];
  private readonly running: SchedulerRequest<S>[] = [];
  private readonly requests = new Map<string, SchedulerRequest<S>>();
  /** Finished (aborted) while in a step in flight; their blocks wait for that step. */
  private readonly finishedInFlight = new Map<string, SchedulerRequest<S>>();
  private arrivals = 0;
  private preemptions = 0;
  private readonly policy: SchedulingPolicy;

  /** This step's cap on sequences (schedule's maxSeqs). */
  private stepSeqCap = Infinity;

  constructor(readonly config: SchedulerConfig) {
    for (const key of ['maxNumBatchedTokens', 'maxNumSeqs', 'maxModelLen', 'blockSize', 'numBlocks'] as const) {
      if (!Number.isInteger(config[key]) || config[key] < 1) throw new RangeError(`scheduler: ${key} must be a positive integer, got ${config[key]}`);
    }
    this.policy = config.policy ?? 'fcfs';
    this.kv = new KvBlocks(new BlockPool(config.numBlocks, config.enablePrefixCaching ?? true), config.blockSize);
  }

  add(request: NewRequest<S>): void {
    if (this.requests.has(request.id)) throw new Error(`request id "${request.id}" is already in use`);
    const total = request.promptTokens.length + (request.outputTokens?.length ?? 0);
    if (request.promptTokens.length === 0) throw new RangeError(`request ${request.id}: the prompt is empty`);
    if (total >= this.config.maxModelLen) {
      throw new RangeError(`request ${request.id}: the prompt has ${total} tokens, max_model_len is ${this.config.maxModelLen} ` +
        '(prompt plus at least one generated token must fit); shorten the prompt or raise --max-model-len');
    }
    const blocksNeeded = Math.ceil((total + 1) / this.config.blockSize);
    if (blocksNeeded > this.config.numBlocks) {
      throw new RangeError(`request ${request.id}: ${total} prompt tokens need ${blocksNeeded} KV blocks, the whole cache has ${this.config.numBlocks}; ` +
        'raise --kv-cache-memory or lower --max-model-len');
    }
    const entry = new SchedulerRequest<S>(request, this.arrivals++);
    this.requests.set(entry.id, entry);
    this.enqueueWaiting(entry);
  }

  /** Ends a request now (a client went away, or a stop string matched). Its blocks are freed. */
  abort(requestId: string, reason: FinishReason = 'abort'): boolean {
    const request = this.requests.get(requestId);
    if (!request) return false;
    this.finish(request, reason);
    return true;
  }

  has(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  request(requestId: string): SchedulerRequest<S> | undefined {
    return this.requests.get(requestId);
  }

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  /**
   * Decides the next step. Requests only have numComputedTokens and
   * numTokens (see request.ts): each scheduled request gets
   * min(numTokens - numComputedTokens, budget left) tokens.
   *   1. running requests: decodes first, then partial prefills; a request
   *      that cannot get blocks preempts the lowest-priority running one
   *   2. then waiting requests, while budget, max_num_seqs and blocks allow
   *      (none after a preemption in this step)
   * A request in a step still in flight (pipeline parallelism runs up to
   * `pp` steps at once) is not scheduled again until that step comes back.
   * `maxSeqs` caps this step's sequences (pipelineShare() splits the requests
   * between the steps in flight).
   */
  schedule(maxSeqs = Infinity): StepPlan<S> {
    const plan: StepPlan<S> = { sequences: [], numBatchedTokens: 0, preempted: [] };
    this.stepSeqCap = maxSeqs;
    this.scheduleRunning(plan);
    if (plan.preempted.length === 0) this.admitWaiting(plan);
    return plan;
  }

  /** Applies a step's results: advances counts, appends sampled tokens, finishes requests. */
  update(plan: StepPlan<S>, sampled: ReadonlyMap<string, number>): StepUpdate {
    const result: StepUpdate = { appended: [], finished: [] };
    for (const seq of plan.sequences) {
      const request = this.requests.get(seq.requestId) ?? this.finishedInFlight.get(seq.requestId);
      if (request) request.inFlight = false;
      if (request && this.finishedInFlight.delete(request.id)) {
        this.kv.free(request); // finished while its step ran: its blocks are safe to reuse only now
        continue;
      }
      if (!request || request.status !== 'running') continue;
      request.numComputedTokens += seq.tokens.length;
      this.kv.cacheComputed(request);
      if (!seq.sample) continue;
      const token = sampled.get(seq.requestId);
      if (token === undefined) throw new Error(`step result has no token for ${seq.requestId}`);
      request.outputTokens.push(token);
      result.appended.push({ requestId: request.id, token });
      const reason = this.stopReason(request, token);
      if (reason) {
        this.finish(request, reason);
        result.finished.push({ requestId: request.id, reason });
      }
    }
    return result;
  }

  /**
   * Sequences per step when `depth` steps are in flight at once (pipeline
   * parallelism): the running and waiting requests split evenly, so that each
   * stage gets a batch of about the same size instead of one step taking them all.
   */
  pipelineShare(depth: number): number {
    if (depth <= 1) return Infinity;
    return Math.max(1, Math.ceil(Math.min(this.running.length + this.waiting.length, this.config.maxNumSeqs) / depth));
  }

  stats(): SchedulerStats {
    return {
      running: this.running.length,
      waiting: this.waiting.length,
      kvUsage: this.kv.pool.stats().usage,
      preemptions: this.preemptions,
      prefixQueries: this.kv.prefixQueries,
      prefixHits: this.kv.prefixHits,
    };
  }

  private scheduleRunning(plan: StepPlan<S>): void {
    // decodes (one token left) before partial prefills, each group in running order
    const order = [...this.running].sort((a, b) => Number(remaining(a) > 1) - Number(remaining(b) > 1));
    for (const request of order) {
      const budget = this.config.maxNumBatchedTokens - plan.numBatchedTokens;
      if (budget <= 0 || plan.sequences.length >= this.stepSeqCap) break;
      if (request.status !== 'running' || request.inFlight) continue; // preempted earlier in this loop, or in a step in flight
      const n = Math.min(remaining(request), budget);
      if (!this.allocateOrPreempt(request, request.numComputedTokens + n, plan)) continue;
      this.plan(plan, request, n);
    }
  }

  /** Allocates blocks for `request`, preempting others (lowest priority first) until it fits. */
  private allocateOrPreempt(request: SchedulerRequest<S>, upTo: number, plan: StepPlan<S>): boolean {
    while (!this.kv.allocate(request, upTo)) {
      const victim = this.pickVictim();
      if (!victim) return false; // every candidate is in flight: try again next step
      this.preempt(victim, plan);
      if (victim === request) return false;
    }
    return true;
  }

  private admitWaiting(plan: StepPlan<S>): void {
    while (this.waiting.length > 0 && this.running.length < this.config.maxNumSeqs) {
      const budget = this.config.maxNumBatchedTokens - plan.numBatchedTokens;
      if (budget <= 0 || plan.sequences.length >= this.stepSeqCap) return;
      const request = this.waiting[0]!;
      const hit: PrefixHit = this.kv.findPrefix(request);
      const n = Math.min(request.numTokens - hit.tokens, budget);
      if (!this.kv.allocate(request, hit.tokens + n, hit)) return; // wait for blocks to free up
      this.waiting.shift();
      request.status = 'running';
      request.numComputedTokens = hit.tokens;
      request.numCachedTokens = hit.tokens;
      this.running.push(request);
      this.plan(plan, request, n);
    }
  }

  private plan(plan: StepPlan<S>, request: SchedulerRequest<S>, n: number): void {
    const start = request.numComputedTokens;
    const tokens: number[] = new Array(n);
    for (let i = 0; i < n; i++) tokens[i] = request.tokenAt(start + i);
    request.inFlight = true;
    plan.sequences.push({
      requestId: request.id,
      tokens,
      cachedTokens: start,
      sample: start + n === request.numTokens,
      outputIndex: request.outputTokens.length,
      sampling: request.sampling,
    });
    plan.numBatchedTokens += n;
  }

  /**
   * FCFS: the most recently admitted running request; priority: the lowest
   * priority, then the latest. Never one whose KV a step in flight is writing.
   */
  private pickVictim(): SchedulerRequest<S> | undefined {
    const candidates = this.running.filter((r) => !r.inFlight);
    if (candidates.length === 0) return undefined;
    if (this.policy === 'fcfs') return candidates[candidates.length - 1]!;
    return candidates.reduce((worst, r) => (compare(r, worst) > 0 ? r : worst));
  }

  /** Preemption by recompute: the request's blocks are freed and it waits again, first in line. */
  private preempt(request: SchedulerRequest<S>, plan: StepPlan<S>): void {
    this.running.splice(this.running.indexOf(request), 1);
    const planned = plan.sequences.findIndex((s) => s.requestId === request.id);
    if (planned >= 0) {
      plan.numBatchedTokens -= plan.sequences[planned]!.tokens.length;
      plan.sequences.splice(planned, 1);
      request.inFlight = false;
    }
    this.kv.free(request);
    request.status = 'waiting';
    request.numComputedTokens = 0;
    request.numPreemptions++;
    this.preemptions++;
    plan.preempted.push(request.id);
    this.enqueueWaiting(request, true);
  }

  private enqueueWaiting(request: SchedulerRequest<S>, front = false): void {
    if (this.policy === 'fcfs') {
      if (front) this.waiting.unshift(request);
      else this.waiting.push(request);
      return;
    }
    const at = this.waiting.findIndex((w) => compare(request, w) < 0);
    this.waiting.splice(at < 0 ? this.waiting.length : at, 0, request);
  }

  private stopReason(request: SchedulerRequest<S>, token: number): FinishReason | null {
    const { stop } = request;
    const generated = request.outputTokens.length;
    if (generated >= stop.minTokens) {
      if (!stop.ignoreEos && stop.eosTokenIds.includes(token)) return 'stop';
      if (stop.stopTokenIds.includes(token)) return 'stop';
    }
    if (generated >= stop.maxTokens) return 'length';
    if (request.numTokens >= this.config.maxModelLen) return 'length';
    return null;
  }

  private finish(request: SchedulerRequest<S>, reason: FinishReason): void {
    if (request.status === 'running') this.running.splice(this.running.indexOf(request), 1);
    else if (request.status === 'waiting') this.waiting.splice(this.waiting.indexOf(request), 1);
    if (request.inFlight) this.finishedInFlight.set(request.id, request); // freed when its step comes back
    else this.kv.free(request);
    request.status = 'finished';
    request.finishReason = reason;
    this.requests.delete(request.id);
  }
}

function remaining(request: SchedulerRequest): number {
  return request.numTokens - request.numComputedTokens;
}

/** Priority order: lower priority value first, then earlier arrival. */
function compare(a: SchedulerRequest, b: SchedulerRequest): number {
  return a.priority - b.priority || a.arrival - b.arrival;
}
