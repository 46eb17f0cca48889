// A rank: owns the model's weights and KV pages, runs steps off the event
// loop (LlamaModel.step is native async work), samples. With one rank it
// holds the whole model; tensor and pipeline parallelism split it later.
import { existsSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { modelChecksum, ModelChecksumMismatchError } from '../../models/checksum.js';
import { LlamaModel } from '../../models/llama.js';
import type { ModelOptions } from '../../models/options.js';
import { Actor } from '../../runtime/index.js';
import type { RankMessage, RankSequence, RankSequenceResult } from '../messages/rank.js';

/**
 * A deterministic fault hook for tests: the rank throws when asked to run
 * engine step `crashAtStep`, once per `onceFile` (the file records that the
 * crash happened, so the restarted rank runs on).
 */
export interface RankFaults {
  crashAtStep: number;
  onceFile: string;
}

export interface RankOptions {
  model: string;
  modelOptions: ModelOptions;
  faults?: RankFaults;
  /** The leader's modelChecksum(): a rank on another node refuses to load different files. */
  expectedChecksum?: string;
}

export class RankActor extends Actor<RankMessage> {
  private model!: LlamaModel;

  constructor(private readonly options: RankOptions) {
    super();
  }

  override preStart(): void {
    if (this.options.expectedChecksum) {
      const actual = modelChecksum(this.options.model);
      if (actual !== this.options.expectedChecksum) {
        throw new ModelChecksumMismatchError(this.options.model, this.options.expectedChecksum, actual, `rank ${this.context.self.path} (pid ${process.pid})`);
      }
    }
    this.model = LlamaModel.load(this.options.model, this.options.modelOptions);
  }

  async receive(message: RankMessage): Promise<void> {
    switch (message.type) {
      case 'step': {
        this.injectFault(message.step);
        const results = await this.model.step(message.sequences.map(toSequenceStep));
        message.replyTo.tell(results.map((r, i) => toResult(message.sequences[i]!, r)));
        return;
      }
      case 'info': {
        const stats = this.model.stats();
        message.replyTo.tell({
          pid: process.pid, threadId, residentWeightBytes: this.model.residentWeightBytes, kvCacheBytes: this.model.kvCache.bytes, steps: stats.steps,
        });
        return;
      }
    }
  }

  override async postStop(): Promise<void> {
    await this.model?.close();
  }

  private injectFault(step: number): void {
    const faults = this.options.faults;
    if (!faults || step !== faults.crashAtStep || existsSync(faults.onceFile)) return;
    writeFileSync(faults.onceFile, `crashed at step ${step}\n`);
    throw new Error(`injected fault: rank crashed at step ${step}`);
  }
}

function toSequenceStep(s: RankSequence) {
  return {
    tokens: s.tokens,
    cachedTokens: s.cachedTokens,
    blockTable: s.blockTable,
    ...(s.sample ? { sample: s.sample } : {}),
    ...(s.promptLogprobs ? { promptLogprobs: s.promptLogprobs } : {}),
  };
}

function toResult(s: RankSequence, r: import('../../models/batch.js').SequenceResult): RankSequenceResult {
  return {
    requestId: s.requestId,
    ...(r.token !== undefined ? { token: r.token, logprob: r.logprob! } : {}),
    ...(r.top ? { top: r.top } : {}),
    ...(r.promptLogprobs ? { promptLogprobs: Array.from(r.promptLogprobs, (v) => (Number.isNaN(v) ? null : v)) } : {}),
    ...(r.promptTop ? { promptTop: r.promptTop } : {}),
  };
}
