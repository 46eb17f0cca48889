// Tensor and pipeline parallelism at the model level: every rank of a layout
// is a LlamaModel holding its shard (models/shard.ts), the ranks of a stage
// step together (their native steps all-reduce through the stage's shm
// group; several steps run at once on the libuv pool), stages hand the
// residual stream on. Every layout must give tp1's logits, log-probabilities
// and samples bit for bit (DESIGN.md, Numerics).
import test from 'ava';
import { packStep, type SequenceStep } from '../../models/batch.js';
import { Checkpoint } from '../../models/checkpoint.js';
import { LlamaModel } from '../../models/llama.js';
import { shardOfRank, tensorGroupCapacity } from '../../models/shard.js';
import { CollectiveGroup } from '../../native/collectives.js';
import type { NativeStepInput, NativeStepOutput } from '../../native/model-raw.js';
import { parseTopology } from '../../topology/load.js';
import { modelShape } from '../../topology/model-shape.js';
import { buildPlan } from '../../topology/plan.js';
import { generatedModel } from './helpers.js';

const HW = { cores: 64, memoryBytes: 64 * 2 ** 30, gpus: [], notes: ['test machine'] };
const BLOCK = 16;

/** Three steps: two prefills (one with prompt logprobs), then decodes of both, greedy and seeded. */
function steps(): NativeStepInput[] {
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

interface Layout {
  outputs: NativeStepOutput[];
  residentWeightBytes: number[];
  allReduces: number[];
}

async function runLayout(dir: string, dtype: 'bfloat16' | 'float32', tp: number, pp: number): Promise<Layout> {
  const plan = buildPlan(parseTopology(`tensor_parallel_size: ${tp}\npipeline_parallel_size: ${pp}\nthreads_per_rank: 1`), HW, modelShape(dir, dtype));
  const options = { dtype, threads: 1, numBlocks: 8, blockSize: BLOCK };
  const models: LlamaModel[][] = [];
  const groups: CollectiveGroup[] = [];
  for (let stage = 0; stage < pp; stage++) {
    const ranks = plan.ranks.filter((r) => r.stage === stage);
    const group = tp > 1 ? CollectiveGroup.create({ ranks: tp, capacityBytes: tensorGroupCapacity(Checkpoint.open(dir).config) }) : undefined;
    if (group) groups.push(group);
    models.push(ranks.map((r) => LlamaModel.load(dir, options, { shard: shardOfRank(r, tp), ...(group ? { group: group.attach(r.tpRank) } : {}) })));
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
  const layout = { outputs, residentWeightBytes: all.map((m) => m.residentWeightBytes), allReduces: all.map((m) => m.stats().allReduces) };
  for (const m of all) await m.close();
  for (const g of groups) g.close();
  return layout;
}

function bytes(a: ArrayBufferView | undefined): Buffer {
  if (!a) return Buffer.alloc(0);
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

const FIELDS = ['sampled', 'sampledLogprobs', 'topIds', 'topLogprobs', 'promptLogprobs', 'promptTopIds', 'promptTopLogprobs', 'logits'] as const;

for (const dtype of ['bfloat16', 'float32'] as const) {
  const dir = () => generatedModel('tiny', 1, dtype === 'bfloat16' ? 'bf16' : 'fp32');
  const layouts = new Map<string, Promise<Layout>>();
  const layout = (tp: number, pp: number) => {
    const key = `${tp}x${pp}`;
    if (!layouts.has(key)) layouts.set(key, runLayout(dir(), dtype, tp, pp));
    return layouts.get(key)!;
  };
  for (const [tp, pp] of [[2, 1], [1, 2], [2, 2], [4, 1]] as const) {
    test.serial(`${dtype}: tp${tp} x pp${pp} gives tp1's logits, logprobs and samples bit for bit`, async (t) => {
      const base = await layout(1, 1);
      const got = await layout(tp, pp);
      for (let s = 0; s < base.outputs.length; s++)
        for (const f of FIELDS) t.true(bytes(got.outputs[s]![f]).equals(bytes(base.outputs[s]![f])), `step ${s}: ${f} differs`);
      t.true(got.outputs[0]!.logits!.length > 0);
      if (tp > 1) {
        t.true(got.allReduces.every((n) => n > 0), `all-reduces per rank: ${got.allReduces.join(', ')}`);
        // each rank holds about 1/tp of its stage's weights (the norms are whole on every rank: tiny here)
        const stages = (await layout(1, pp)).residentWeightBytes;
        got.residentWeightBytes.forEach((b, r) => {
          const stage = stages[Math.floor(r / tp)]!;
          t.true(Math.abs(b / stage - 1 / tp) < 0.01, `rank ${r} holds ${b} bytes of its stage's ${stage}`);
        });
      } else {
        t.deepEqual(got.allReduces, got.allReduces.map(() => 0));
      }
    });
  }
}
