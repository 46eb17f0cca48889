// What the ranks hold of the batch (their PersistentBatch), as the scheduler
// knows it, so each step message carries only what changed:
//
//   request id -> arrival       which incarnation of the id the ranks hold (an
//                               id comes back after an abort and re-add)
//                 preemptions   a preempted request lost its pages: dropped,
//                               then added again with its new table
//                 pages         how many of its table's pages the ranks hold
//                               (tables only grow while a request runs)
//
// A grammar's token mask is not held by the ranks: each sampled row of a
// request with a grammar carries this step's mask.
//
// A request the ranks hold is dropped at the first step after it stopped
// running (finished, aborted, preempted). The first step of a mirror resets
// the ranks, so a restarted scheduler never inherits what its predecessor sent.
import type { RankBatchDelta, RankNewRequest, RankScheduled } from '../messages/rank.js';
import type { SchedulerRequest } from './request.js';
import type { ScheduledSequence, Scheduler } from './scheduler.js';

interface Held {
  arrival: number;
  preemptions: number;
  pages: number;
}

/** How a request's parameters reach the rank (the scheduler's request record passes them through untouched). */
export interface RankSampling {
  params: RankNewRequest['params'] & { promptLogprobs?: number };
  seed: number;
}

export class RankBatchMirror<S extends RankSampling> {
  private readonly held = new Map<string, Held>();
  private first = true;

  constructor(private readonly scheduler: Scheduler<S>) {}

  get size(): number {
    return this.held.size;
  }

  /** The delta and the sequences of a step for `plan` (call once per plan, in the order the steps are sent). */
  step(sequences: readonly ScheduledSequence<S>[]): { batch: RankBatchDelta; sequences: RankScheduled[] } {
    const batch: RankBatchDelta = { dropped: [], added: [], grown: [] };
    if (this.first) batch.reset = true;
    this.first = false;
    for (const [id, held] of this.held) {
      const request = this.scheduler.request(id);
      if (request?.status === 'running' && request.arrival === held.arrival && request.numPreemptions === held.preemptions) continue;
      this.held.delete(id);
      batch.dropped.push(id);
    }
    const out = sequences.map((seq) => {
      const request = this.scheduler.request(seq.requestId)!;
      const table = this.scheduler.kv.table(request);
      const held = this.held.get(seq.requestId);
      if (!held) {
        batch.added.push(newRequest(request, table));
        this.held.set(seq.requestId, { arrival: request.arrival, preemptions: request.numPreemptions, pages: table.length });
      } else if (table.length > held.pages) {
        batch.grown.push({ requestId: seq.requestId, blocks: table.slice(held.pages) });
        held.pages = table.length;
      }
      return scheduled(request, seq);
    });
    return { batch, sequences: out };
  }
}

function newRequest<S extends RankSampling>(request: SchedulerRequest<S>, table: readonly number[]): RankNewRequest {
  const { params, seed } = request.sampling!;
  const penalties = (params.presencePenalty ?? 0) !== 0 || (params.frequencyPenalty ?? 0) !== 0 || (params.repetitionPenalty ?? 1) !== 1;
  return {
    requestId: request.id, blockTable: [...table], promptLength: request.promptTokens.length, params: samplerParams(params), seed,
    ...(penalties ? { penaltyTokens: { prompt: [...request.promptTokens], output: [...request.outputTokens] } } : {}),
  };
}

function scheduled<S extends RankSampling>(request: SchedulerRequest<S>, seq: ScheduledSequence<S>): RankScheduled {
  const out: RankScheduled = { requestId: seq.requestId, tokens: seq.tokens, cachedTokens: seq.cachedTokens };
  if (seq.sample) {
    out.outputIndex = seq.outputIndex;
    // the grammar's matcher has accepted every output token so far: this is the mask of the token sampled now
    if (request.grammar) out.mask = request.grammar.nextMask();
  }
  const topN = request.sampling!.params.promptLogprobs;
  const prompt = request.promptTokens;
  if (topN !== undefined && seq.cachedTokens < prompt.length) {
    const targets = seq.tokens.map((_, i) => {
      const next = seq.cachedTokens + i + 1;
      return next < prompt.length ? prompt[next]! : -1;
    });
    out.promptLogprobs = { targets, topN };
  }
  return out;
}

/** The sampler's share of the parameters. */
function samplerParams(p: RankSampling['params']): RankNewRequest['params'] {
  const { temperature, topK, topP, minP, presencePenalty, frequencyPenalty, repetitionPenalty, logitBias, logprobs } = p;
  return Object.fromEntries(Object.entries({ temperature, topK, topP, minP, presencePenalty, frequencyPenalty, repetitionPenalty, logitBias, logprobs })
    .filter(([, v]) => v !== undefined));
}
