// FP8 weights across tensor and pipeline ranks: every layout gives the single
// rank FP8 model's logits, log-probabilities and samples bit for bit
// (DESIGN.md, Numerics; native/src/model/model_parallel.h has why), with each
// rank's linears resident as FP8 and about 1/tp of its stage's weights.
// Formats: FBGEMM "all" (every linear and the lm head, vocab-parallel),
// FBGEMM "meta" (MLPs of the middle layers), online --quantization fp8 and
// compressed-tensors per-tensor with static input scales; tiny, and tiny
// widened so that the row-parallel segments hold whole prepacked chunks.
import test from 'ava';
import type { ModelOptions } from '../../models/options.js';
import { loadNative } from '../../native/index.js';
import { quantizeCheckpoint } from '../../models/quantization/quantize.js';
import { compressedTensorsConfig, writeFp8Checkpoint } from './fp8-checkpoints.js';
import { generatedModel, tempDir } from './helpers.js';
import { bytes, FIELDS, runLayout, runWhole, type Layout } from './parallel-layout.js';

interface Variant {
  name: string;
  dir: () => string;
  options: ModelOptions & { dtype: 'bfloat16' };
  layouts: [number, number][];
}

/**
 * tiny with o_proj / down_proj segments wider than the FP8 kernels' 64-code chunk
 * (8 heads of 72: segments of 72 columns; intermediate 800: segments of 100), so
 * that per-segment prepacking (model_binding.cc) reorders codes; tiny's segments
 * (4 and 12 columns) are all tail.
 */
const WIDE = { layers: 2, shape: { hiddenSize: 64, numHeads: 8, numKvHeads: 4, headDim: 72, intermediateSize: 800 } };

const quantized = (scheme: 'all' | 'meta', extra: Parameters<typeof generatedModel>[3] = {}) => () => {
  const dir = tempDir(`fp8-${scheme}-par`);
  quantizeCheckpoint(generatedModel('tiny', 1, 'bf16', extra), dir, scheme);
  return dir;
};

const VARIANTS: Variant[] = [
  { name: 'FBGEMM all', dir: quantized('all'), options: { dtype: 'bfloat16' }, layouts: [[2, 1], [1, 2], [2, 2], [4, 1]] },
  { name: 'FBGEMM all, wide segments', dir: quantized('all', WIDE), options: { dtype: 'bfloat16' }, layouts: [[2, 1], [2, 2], [4, 1]] },
  { name: 'FBGEMM meta (4 layers)', dir: quantized('meta', { layers: 4 }), options: { dtype: 'bfloat16' }, layouts: [[2, 1], [1, 2], [2, 2]] },
  { name: 'online fp8', dir: () => generatedModel('tiny'), options: { dtype: 'bfloat16', quantization: 'fp8' }, layouts: [[2, 1], [1, 2], [2, 2]] },
  { name: 'online fp8, wide segments', dir: () => generatedModel('tiny', 1, 'bf16', WIDE), options: { dtype: 'bfloat16', quantization: 'fp8' }, layouts: [[2, 1]] },
  {
    name: 'compressed-tensors static per-tensor',
    dir: () => writeFp8Checkpoint(generatedModel('tiny'), { quantizationConfig: compressedTensorsConfig('tensor', false, ['lm_head']), quantized: (m) => m !== 'lm_head', weightScale: 'tensor', inputScale: 0.02 }),
    options: { dtype: 'bfloat16' },
    layouts: [[2, 1]],
  },
  // The other FP8 kernels this CPU runs (each ISA against its own single rank).
  ...loadNative().availableIsas().filter((isa) => isa !== loadNative().selectedIsa()).map((isa): Variant => (
    { name: `FBGEMM all, wide segments, ${isa}`, dir: quantized('all', WIDE), options: { dtype: 'bfloat16', isa }, layouts: [[2, 1]] })),
];

const KINDS = ['qkv', 'o', 'gateUp', 'down'] as const;

for (const v of VARIANTS) {
  let dir: string | undefined;
  let whole: Promise<Layout> | undefined;
  const base = () => (whole ??= runWhole((dir ??= v.dir()), v.options));
  for (const [tp, pp] of v.layouts) {
    test.serial(`${v.name}: tp${tp} x pp${pp} gives the single FP8 rank's logits, logprobs and samples bit for bit, FP8 resident on every rank`, async (t) => {
      const want = await base();
      const got = await runLayout(dir!, v.options, tp, pp);
      for (let s = 0; s < want.outputs.length; s++)
        for (const f of FIELDS) t.true(bytes(got.outputs[s]![f]).equals(bytes(want.outputs[s]![f])), `step ${s}: ${f} differs`);
      t.true(got.outputs[0]!.logits!.length > 0);

      // Each rank's linears have the single rank's dtypes for its layers, FP8 among them.
      const d = want.stats[0]!.linearDtypes;
      got.stats.forEach((s, r) => {
        const [a, b] = got.layers[r]!;
        for (const k of KINDS) t.deepEqual(s.linearDtypes[k], d[k].slice(a, b), `rank ${r}: ${k}`);
        t.is(s.linearDtypes.lmHead, Math.floor(r / tp) === pp - 1 ? d.lmHead : 'none', `rank ${r}: lm head`);
        t.true(KINDS.some((k) => s.linearDtypes[k].includes('fp8_e4m3')), `rank ${r} holds no FP8 linear`);
        t.truthy(s.fp8Kernel);
      });

      // Weight bytes: the ranks of a stage hold equal shares; with tp <= kv heads the
      // linears of all ranks add up to the single rank's exactly (nothing replicated).
      for (let stage = 0; stage < pp; stage++) {
        const ranks = got.stats.map((_, r) => r).filter((r) => Math.floor(r / tp) === stage);
        const linear = ranks.map((r) => got.stats[r]!.linearWeightBytes);
        t.true(linear.every((b) => b === linear[0]), `stage ${stage} linear bytes ${linear.join(', ')}`);
        const resident = ranks.map((r) => got.residentWeightBytes[r]!);
        const total = resident.reduce((x, y) => x + y, 0);
        for (const b of resident) t.true(Math.abs(b / total - 1 / tp) < 0.01, `stage ${stage}: resident ${resident.join(', ')}`);
        if (pp === 1) t.true(Math.abs(total / want.residentWeightBytes[0]! - 1) < 0.01, `${total} vs ${want.residentWeightBytes[0]}`);
      }
      if (tp <= 2) t.is(got.stats.reduce((n, s) => n + s.linearWeightBytes, 0), want.stats[0]!.linearWeightBytes);

      if (tp > 1) t.true(got.allReduces.every((n) => n > 0), `all-reduces per rank: ${got.allReduces.join(', ')}`);
      else t.deepEqual(got.allReduces, got.allReduces.map(() => 0));
    });
  }
}
