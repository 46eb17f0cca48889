// The rank's persistent batch: every request the scheduler has told this
// rank about, keyed by request id, so that a step message carries only what
// changed (messages/rank.ts, RankBatchDelta) and this step's tokens.
//
//   request id -> blockTable   KV pages in position order, appended to
//                 params, seed  sampling parameters, fixed for the request's life
//                               (the logit bias as a sparse list, built once)
//                 penalty       prompt tokens and output tokens so far (only with
//                               penalties): each step's input tokens at positions
//                               >= promptLength are output tokens, appended here
//                               when they are the next one
//
// A grammar's token mask is not kept: it changes every step, so it comes with
// the step's RankScheduled row.
//
// Every rank of a group applies the same deltas, so they hold the same batch.
// A fresh rank holds nothing; a fresh scheduler's first step resets, then
// adds every request it runs.
import type { SequenceStep } from '../../models/batch.js';
import { logitBiasList, type LogitBiasList, type SamplingParams } from '../../models/sampling.js';
import type { RankBatchDelta, RankNewRequest, RankScheduled } from '../messages/rank.js';

interface KnownRequest {
  blockTable: number[];
  promptLength: number;
  params: SamplingParams;
  /** params.logitBias as the sampler's sparse list, built once. */
  logitBias: LogitBiasList | null;
  seed: number;
  penalty?: { prompt: number[]; output: number[] };
}

export class PersistentBatch {
  private readonly requests = new Map<string, KnownRequest>();

  get size(): number {
    return this.requests.size;
  }

  has(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  apply(delta: RankBatchDelta): void {
    if (delta.reset) this.requests.clear();
    for (const id of delta.dropped) this.requests.delete(id);
    for (const r of delta.added) this.requests.set(r.requestId, known(r));
    for (const { requestId, blocks } of delta.grown) {
      const request = this.requests.get(requestId);
      if (!request) throw new Error(`persistent batch: pages for request ${requestId}, which this rank does not hold`);
      request.blockTable.push(...blocks);
    }
  }

  /** This step's sequences in the model's terms; records the output tokens the step computes. */
  sequences(scheduled: readonly RankScheduled[]): SequenceStep[] {
    return scheduled.map((s) => {
      const request = this.requests.get(s.requestId);
      if (!request) throw new Error(`persistent batch: a step schedules request ${s.requestId}, which this rank does not hold`);
      if (request.penalty) recordOutputs(request, s);
      const step: SequenceStep = { tokens: s.tokens, cachedTokens: s.cachedTokens, blockTable: request.blockTable };
      if (s.outputIndex !== undefined) {
        const penalty = request.penalty;
        if (penalty && penalty.output.length !== s.outputIndex) {
          throw new Error(`persistent batch: request ${s.requestId} samples output ${s.outputIndex} but this rank holds ${penalty.output.length} output tokens`);
        }
        step.sample = {
          params: request.params, seed: request.seed, outputIndex: s.outputIndex,
          ...(request.logitBias ? { logitBias: request.logitBias } : {}),
          ...(penalty ? { promptTokens: penalty.prompt, outputTokens: penalty.output } : {}),
          ...(s.mask ? { mask: s.mask } : {}),
        };
      }
      if (s.promptLogprobs) step.promptLogprobs = s.promptLogprobs;
      return step;
    });
  }
}

function known(r: RankNewRequest): KnownRequest {
  return {
    blockTable: [...r.blockTable], promptLength: r.promptLength, params: r.params, seed: r.seed,
    logitBias: logitBiasList(r.params.logitBias),
    ...(r.penaltyTokens ? { penalty: { prompt: r.penaltyTokens.prompt, output: [...r.penaltyTokens.output] } } : {}),
  };
}

/** Appends the step's input tokens that are the request's next output tokens (a recompute feeds ones already held). */
function recordOutputs(request: KnownRequest, s: RankScheduled): void {
  const output = request.penalty!.output;
  for (let j = 0; j < s.tokens.length; j++) {
    const index = s.cachedTokens + j - request.promptLength;
    if (index === output.length) output.push(s.tokens[j]!);
  }
}
