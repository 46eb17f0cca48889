// Tensor and pipeline parallelism at the model level: every rank of a layout
// is a LlamaModel holding its shard (models/shard.ts), the ranks of a stage
// step together (their native steps all-reduce through the stage's shm
// group; several steps run at once on the libuv pool), stages hand the
// residual stream on. Every layout must give tp1's logits, log-probabilities
// and samples bit for bit (DESIGN.md, Numerics).
import test from 'ava';
import { bytes, FIELDS, runLayout, type Layout } from './parallel-layout.js';
import { generatedModel } from './helpers.js';

for (const dtype of ['bfloat16', 'float32'] as const) {
  const dir = () => generatedModel('tiny', 1, dtype === 'bfloat16' ? 'bf16' : 'fp32');
  const layouts = new Map<string, Promise<Layout>>();
  const layout = (tp: number, pp: number) => {
    const key = `${tp}x${pp}`;
    if (!layouts.has(key)) layouts.set(key, runLayout(dir(), { dtype }, tp, pp));
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
