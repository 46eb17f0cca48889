// A rank: owns the model's weights and KV pages, runs steps off the event
// loop (LlamaModel.step is native async work), samples. With one rank it
// holds the whole model; in a tensor / pipeline group it holds its shard
// (models/shard.ts): the ranks of a stage run each step together (their
// native steps all-reduce through the stage's shm group), a stage hands its
// residual stream to the same tensor rank of the next stage, and rank 0 of
// the last stage replies.
//
// The rank keeps the batch between steps (persistent-batch.ts): a step
// message carries what changed since the last one and this step's tokens,
// never a request's whole table or history. Every rank of the group applies
// the same changes, in step order.
import { existsSync, writeFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { packStep, unpackStep } from '../../models/batch.js';
import { modelChecksum, ModelChecksumMismatchError } from '../../models/checksum.js';
import { LlamaModel } from '../../models/llama.js';
import { nowMs } from '../engine/step-timings.js';
import type { ModelOptions } from '../../models/options.js';
import type { ModelShard } from '../../models/shard.js';
import { CollectiveRank, isCollectiveGroupDescriptor, type CollectiveGroupDescriptor } from '../../native/collectives.js';
import { Actor, type ActorRef } from '../../runtime/index.js';
import type { RankMessage, RankScheduled, RankSequenceResult } from '../messages/rank.js';
import { PersistentBatch } from './persistent-batch.js';
import type { TensorGroupsMessage } from './tensor-groups.js';

/**
 * A deterministic fault hook for tests: the rank throws when asked to run
 * engine step `crashAtStep`, once per `onceFile` (the file records that the
 * crash happened, so the restarted rank runs on).
 */
export interface RankFaults {
  crashAtStep: number;
  onceFile: string;
}

/** A rank's place in a tensor / pipeline group (topology/plan.ts). */
export interface RankParallelOptions {
  shard: ModelShard;
  stage: number;
  /** The TensorGroupsActor to ask for this stage's group (tp > 1). */
  groupsPath?: string;
  /** The same tensor rank in the next stage (every stage but the last). */
  nextPath?: string;
  collectiveTimeoutMs?: number;
}

export interface RankOptions {
  model: string;
  modelOptions: ModelOptions;
  parallel?: RankParallelOptions;
  faults?: RankFaults;
  /** The leader's modelChecksum(): a rank on another node refuses to load different files. */
  expectedChecksum?: string;
}

export class RankActor extends Actor<RankMessage> {
  private model!: LlamaModel;
  /** The requests the scheduler runs here, kept between steps (persistent-batch.ts). */
  private readonly batch = new PersistentBatch();
  private group: CollectiveRank | undefined;
  private next: ActorRef<RankMessage> | undefined;
  private hiddenReceived = 0;
  private hiddenSent = 0;

  constructor(private readonly options: RankOptions) {
    super();
  }

  override async preStart(): Promise<void> {
    if (this.options.expectedChecksum) {
      const actual = modelChecksum(this.options.model);
      if (actual !== this.options.expectedChecksum) {
        throw new ModelChecksumMismatchError(this.options.model, this.options.expectedChecksum, actual, `rank ${this.context.self.path} (pid ${process.pid})`);
      }
    }
    const parallel = this.options.parallel;
    if (!parallel) {
      this.model = LlamaModel.load(this.options.model, this.options.modelOptions);
      return;
    }
    if (parallel.shard.tpSize > 1) this.group = CollectiveRank.attach(await this.groupDescriptor(parallel), parallel.shard.tpRank);
    if (parallel.nextPath) this.next = this.context.system.refFor<RankMessage>(parallel.nextPath);
    this.model = LlamaModel.load(this.options.model, this.options.modelOptions, {
      shard: parallel.shard,
      ...(this.group ? { group: this.group } : {}),
      ...(parallel.collectiveTimeoutMs !== undefined ? { collectiveTimeoutMs: parallel.collectiveTimeoutMs } : {}),
    });
  }

  private async groupDescriptor(parallel: RankParallelOptions): Promise<CollectiveGroupDescriptor> {
    if (!parallel.groupsPath) throw new Error(`rank ${this.context.self.path}: tensor size ${parallel.shard.tpSize} needs a tensor group, and no groupsPath was given`);
    const groups = this.context.system.refFor<TensorGroupsMessage>(parallel.groupsPath);
    const reply = await groups.ask<CollectiveGroupDescriptor | { error: string }>((replyTo) => ({ type: 'descriptor', stage: parallel.stage, replyTo }), { timeoutMs: 30_000 });
    if (!isCollectiveGroupDescriptor(reply)) throw new Error(`rank ${this.context.self.path}: ${(reply as { error?: string }).error ?? 'no tensor group descriptor'}`);
    return reply;
  }

  async receive(message: RankMessage): Promise<void> {
    switch (message.type) {
      case 'step': {
        this.injectFault(message.step);
        if (this.options.parallel) return this.parallelStep(message);
        this.batch.apply(message.batch);
        const seqs = this.batch.sequences(message.sequences);
        const packed = packStep(seqs, this.model.options.blockSize);
        const started = nowMs();
        const out = await this.model.stepFlat(packed.input);
        const nativeMs = nowMs() - started;
        message.replyTo.tell({ results: unpackStep(seqs, packed, out).map((r, i) => toResult(message.sequences[i]!, r)), nativeMs });
        return;
      }
      case 'info': {
        const stats = this.model.stats();
        message.replyTo.tell({
          pid: process.pid, threadId, residentWeightBytes: this.model.residentWeightBytes, kvCacheBytes: this.model.kvCache.bytes, steps: stats.steps,
          stage: this.options.parallel?.stage ?? 0, tpRank: this.options.parallel?.shard.tpRank ?? 0, allReduces: stats.allReduces, linearDtypes: stats.linearDtypes,
          hiddenReceived: this.hiddenReceived, hiddenSent: this.hiddenSent,
        });
        return;
      }
    }
  }

  /** One step of a shard: same flat batch on every rank of the stage; hidden state in and out between stages. */
  private async parallelStep(message: Extract<RankMessage, { type: 'step' }>): Promise<void> {
    const { shard } = this.options.parallel!;
    this.batch.apply(message.batch);
    const seqs = this.batch.sequences(message.sequences);
    const packed = packStep(seqs, this.model.options.blockSize);
    if (message.hidden) {
      packed.input.hidden = message.hidden;
      this.hiddenReceived++;
    }
    const started = nowMs();
    const out = await this.model.stepFlat(packed.input);
    const nativeMs = nowMs() - started + (message.nativeMs ?? 0);
    if (!shard.lmHead) {
      const { hidden: _in, ...rest } = message;
      this.next!.tell({ ...rest, hidden: out.hidden!, nativeMs });
      this.hiddenSent++;
      return;
    }
    if (shard.tpRank !== 0) return; // rank 0 of the last stage sampled and replies
    message.replyTo.tell({ results: unpackStep(seqs, packed, out).map((r, i) => toResult(message.sequences[i]!, r)), nativeMs });
  }

  override async postStop(): Promise<void> {
    // A peer may be waiting for this rank in a collective (or this rank for a
    // dead peer): abort the group first, so that no step waits out its timeout.
    // The group is re-created with the rank group anyway (tensor-groups.ts).
    this.group?.bumpEpoch();
    await this.model?.close().catch(() => undefined);
    this.group?.close();
  }

  private injectFault(step: number): void {
    const faults = this.options.faults;
    if (!faults || step !== faults.crashAtStep || existsSync(faults.onceFile)) return;
    writeFileSync(faults.onceFile, `crashed at step ${step}\n`);
    throw new Error(`injected fault: rank crashed at step ${step}`);
  }
}

function toResult(s: RankScheduled, r: import('../../models/batch.js').SequenceResult): RankSequenceResult {
  return {
    requestId: s.requestId,
    ...(r.token !== undefined ? { token: r.token, logprob: r.logprob! } : {}),
    ...(r.top ? { top: r.top } : {}),
    ...(r.promptLogprobs ? { promptLogprobs: Array.from(r.promptLogprobs, (v) => (Number.isNaN(v) ? null : v)) } : {}),
    ...(r.promptTop ? { promptTop: r.promptTop } : {}),
  };
}
