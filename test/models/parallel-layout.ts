// Runs a model directory as a tensor / pipeline layout of LlamaModel ranks on
// a fixed sequence of steps (the model-level parallel tests): every rank
// holds its shard (models/shard.ts), the ranks of a stage step together
// (their native steps all-reduce through the stage's shm group; several
// steps run at once on the libuv pool), stages hand the residual stream on.
import { packStep, type SequenceStep } from '../../models/batch.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { LlamaModel } from '../../models/llama.js';
import type { ModelOptions } from '../../models/options.js';
import { shardOfRank, tensorGroupCapacity } from '../../models/shard.js';
import { CollectiveGroup } from '../../native/collectives.js';
import type { NativeModelStats, NativeStepInput, NativeStepOutput } from '../../native/model-raw.js';
import { parseTopology } from '../../topology/load.js';
import { modelShape } from '../../topology/model-shape.js';
import { buildPlan } from '../../topology/plan.js';

const HW = { cores: 64, memoryBytes: 64 * 2 ** 30, gpus: [], notes: ['test machine'] };
export const BLOCK = 16;

/** Three steps: two prefills (one with prompt logprobs), then decodes of both, greedy and seeded. */
export function steps(): NativeStepInput[] {
  const a = Array.from({ length: 21 }, (_, i) => (i * 7919 + 13) % 128256);
  const b = Array.from({ length: 9 }, (_, i) => (i * 104729 + 5) % 128256);
  const greedy = { params: { temperature: 0, logprobs: 3 }, seed: 0, outputIndex: 0 };
  const seeded = { params: { temperature: 0.9, topP: 0.9, topK: 50 }, seed: 42, outputIndex: 0 };
  const s1: SequenceStep[] = [
    { tokens: a, cachedTokens: 0, blockTable: [0, 1], sample: greedy, promptLogprobs: { targets: [...a.slice(1), -1], topN: 2 } },
    { tokens: b, cachedTokens: 0, blockTable: [2], sample: seeded },
  ];
  const s2: SequenceStep[] = [
    { tokens: [77], cachedTokens: 21, blockTable: [0, 1], sample: { ...greedy, outputIndex: 1 } },
    { tokens: [5000], cachedTokens: 9, blockTable: [2], sample: { ...seeded, outputIndex: 1 } },
  ];
  const s3: SequenceStep[] = [{ tokens: [128000, 9], cachedTokens: 22, blockTable: [0, 1], sample: { ...greedy, outputIndex: 2 } }];
  return [s1, s2, s3].map((s) => {
    const input = packStep(s, BLOCK).input;
    input.returnLogits = true;
    return input;
  });
}

export interface Layout {
  /** The last stage's rank 0 outputs, one per step. */
  outputs: NativeStepOutput[];
  /** Per rank, stage-major (rank r is stage floor(r / tp), tensor rank r % tp). */
  residentWeightBytes: number[];
  allReduces: number[];
  stats: NativeModelStats[];
  /** Layer range of each rank's stage. */
  layers: [number, number][];
}

export function bytes(a: ArrayBufferView | undefined): Buffer {
  if (!a) return Buffer.alloc(0);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export const FIELDS = ['sampled', 'sampledLogprobs', 'topIds', 'topLogprobs', 'promptLogprobs', 'promptTopIds', 'promptTopLogprobs', 'logits'] as const;

type LayoutOptions = ModelOptions & { dtype: 'bfloat16' | 'float32' };

/** The whole model as one rank, not sharded (weights.ts's loader): the reference of every layout. */
export async function runWhole(dir: string, options: LayoutOptions): Promise<Layout> {
  const model = LlamaModel.load(dir, { threads: 1, numBlocks: 8, blockSize: BLOCK, ...options });
  const outputs: NativeStepOutput[] = [];
  for (const input of steps()) outputs.push(await model.stepFlat(input));
  const stats = model.stats();
  const layout = { outputs, residentWeightBytes: [model.residentWeightBytes], allReduces: [stats.allReduces], stats: [stats], layers: [[0, model.config.numLayers]] as [number, number][] };
  await model.close();
  return layout;
}

export async function runLayout(dir: string, options: LayoutOptions, tp: number, pp: number): Promise<Layout> {
  const plan = buildPlan(parseTopology(`tensor_parallel_size: ${tp}\npipeline_parallel_size: ${pp}\nthreads_per_rank: 1`), HW, modelShape(dir, options.dtype));
  const modelOptions = { threads: 1, numBlocks: 8, blockSize: BLOCK, ...options };
  const models: LlamaModel[][] = [];
  const groups: CollectiveGroup[] = [];
  const layers: [number, number][] = [];
  try {
    for (let stage = 0; stage < pp; stage++) {
      const ranks = plan.ranks.filter((r) => r.stage === stage);
      const group = tp > 1 ? CollectiveGroup.create({ ranks: tp, capacityBytes: tensorGroupCapacity(Checkpoint.open(dir).config) }) : undefined;
      if (group) groups.push(group);
      models.push(ranks.map((r) => LlamaModel.load(dir, modelOptions, { shard: shardOfRank(r, tp), ...(group ? { group: group.attach(r.tpRank) } : {}) })));
      for (const r of ranks) layers.push(r.layers);
    }
    const outputs: NativeStepOutput[] = [];
    for (const input of steps()) {
      let hidden: Float32Array | undefined;
      for (const stage of models) {
        const outs = await Promise.all(stage.map((m) => m.stepFlat({ ...input, ...(hidden ? { hidden } : {}) })));
        hidden = outs[0]!.hidden;
        if (stage === models[models.length - 1]) outputs.push(outs[0]!);
        else for (const o of outs.slice(1)) if (Buffer.compare(bytes(o.hidden!), bytes(hidden!)) !== 0) throw new Error('tp ranks disagree on the hidden state');
      }
    }
    const all = models.flat();
    const stats = all.map((m) => m.stats());
    return { outputs, residentWeightBytes: all.map((m) => m.residentWeightBytes), allReduces: stats.map((s) => s.allReduces), stats, layers };
  } finally {
    for (const m of models.flat()) await m.close();
    for (const g of groups) g.close();
  }
}
