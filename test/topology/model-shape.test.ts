// The plan's memory figures follow what the ranks will hold: FP8 linears (from
// the checkpoint or --quantization fp8) at one byte per weight, an FP8 KV
// cache at one byte per element (the KV budget itself stays per rank); a checkpoint that keeps some layers in bf16
// is counted at the bf16 size (the check stays on the safe side).
import test from 'ava';
import { quantizeCheckpoint } from '../../models/quantization/quantize.js';
import { modelShape } from '../../topology/model-shape.js';
import { buildPlan, type ModelShape } from '../../topology/plan.js';
import { parseTopology } from '../../topology/load.js';
import { generatedModel, tempDir } from '../models/helpers.js';

const hardware = { cores: 2, memoryBytes: 64 * 2 ** 30, gpus: [], source: 'test' } as never;

/** Rank 0's weight bytes as the plan counts them. */
function rankWeights(shape: ModelShape, tp: number): number {
  return buildPlan(parseTopology(`tensor_parallel_size: ${tp}\nallow_oversubscription: true`), hardware, shape, 'test').ranks[0]!.weightBytes!;
}

test('FP8 weights shrink the per-rank weight bytes the plan checks; an FP8 KV cache counts one byte per element', (t) => {
  const src = generatedModel('tiny');
  const all = tempDir('shape-all');
  quantizeCheckpoint(src, all, 'all');
  const meta = tempDir('shape-meta');
  quantizeCheckpoint(generatedModel('tiny', 1, 'bf16', { layers: 4 }), meta, 'meta');

  const bf16 = modelShape(src, 'bfloat16');
  t.like(bf16, { weightBytes: 2, attentionBytes: 2, mlpBytes: 2, lmHeadBytes: 2, kvBytes: 2 });
  t.like(modelShape(src, 'bfloat16', { quantization: 'fp8' }), { attentionBytes: 1, mlpBytes: 1, lmHeadBytes: 2 });
  t.like(modelShape(all, 'bfloat16'), { weightBytes: 2, attentionBytes: 1, mlpBytes: 1, lmHeadBytes: 1, tieWordEmbeddings: false });
  t.like(modelShape(meta, 'bfloat16'), { attentionBytes: 2, mlpBytes: 2, lmHeadBytes: 2 }, 'first and last layers stay bf16: counted at bf16');
  t.like(modelShape(src, 'bfloat16', { kvCacheDtype: 'fp8' }), { kvBytes: 1 });

  const c = bf16;
  const linears = c.numLayers * (c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize);
  for (const tp of [1, 2]) {
    const saved = rankWeights(bf16, tp) - rankWeights(modelShape(src, 'bfloat16', { quantization: 'fp8' }), tp);
    t.is(saved, linears / tp, `tp ${tp}: each decoder linear weight counts one byte less`);
  }
});
