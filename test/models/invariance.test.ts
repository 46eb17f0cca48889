// Batch and chunking invariance, bitwise: a sequence's log-probabilities and
// sampled tokens are the same whatever else is in the batch and however its
// prompt is chunked (DESIGN.md, Numerics). Also: a batched step reads each
// weight matrix once, not once per sequence (counted by the native model).
import test from 'ava';
import type { SequenceResult, SequenceStep } from '../../models/batch.js';
import { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';
import { bitsEqual, generatedModel, randomTokens, teacherForced } from './helpers.js';

const PROMPT = randomTokens(150, 128256, 5);
const SAMPLE = { params: { temperature: 0.8, topK: 50, topP: 0.95, logprobs: 3 }, seed: 42, outputIndex: 0 };
// Top-p alone: the nucleus from the lm head's records, whose tiles any thread summarizes in any order.
const TOP_P = { params: { temperature: 0.9, topP: 0.9, logprobs: 2 }, seed: 43, outputIndex: 0 };

for (const dtype of ['bfloat16', 'float32'] as const) {
  test(`${dtype}: prompt chunks of 1, 7, 64 and the whole prompt give bitwise identical logprobs and samples`, async (t) => {
    const model = LlamaModel.load(generatedModel('tiny'), { dtype, numBlocks: 64 });
    const runs: { logprobs: Float32Array; last: SequenceResult }[] = [];
    for (const chunk of [PROMPT.length, 1, 7, 64]) runs.push(await teacherForced(model, PROMPT, { chunk, topN: 3 }));
    for (const [i, chunk] of [1, 7, 64].entries()) {
      t.true(bitsEqual(runs[i + 1]!.logprobs, runs[0]!.logprobs), `chunk ${chunk} logprobs`);
      const { token, logprob, top } = runs[i + 1]!.last;
      const want = runs[0]!.last;
      t.deepEqual({ token, logprob, top }, { token: want.token, logprob: want.logprob, top: want.top }, `chunk ${chunk}: sampled token, logprob, top-3`);
    }
    await model.close();
  });
}

/** Runs `target` (a 150-token prompt, in chunks of 37) inside batches of `size - 1` other sequences. */
async function inBatches(model: LlamaModel, size: number, seed: number): Promise<{ results: SequenceResult[]; weightBytes: number[] }> {
  const bs = model.kvCache.blockSize;
  const pages = new PageAllocator(model.kvCache.numBlocks);
  // Others: a mix of prefill chunks of varied length and one-token decodes, each with its own cache.
  const others = Array.from({ length: size - 1 }, (_, i) => {
    const prompt = randomTokens(1 + ((i * 37 + seed) % 90), 128256, seed * 1000 + i);
    return { prompt, cached: 0, table: [] as number[] };
  });
  const targetTable: number[] = [];
  const results: SequenceResult[] = [];
  const weightBytes: number[] = [];
  for (let start = 0; start < PROMPT.length; start += 37) {
    const part = PROMPT.slice(start, start + 37);
    pages.ensure(targetTable, start + part.length, bs);
    const steps: SequenceStep[] = [];
    const targetStep: SequenceStep = {
      tokens: part,
      cachedTokens: start,
      blockTable: targetTable,
      promptLogprobs: { targets: part.map((_, i) => PROMPT[start + i + 1] ?? -1), topN: 2 },
      sample: { ...((start / 37) % 2 === 0 ? SAMPLE : TOP_P), outputIndex: start },
    };
    for (const o of others) {
      // A prefill chunk of up to 13 tokens, or a decode once the prompt is in.
      const tokens = o.cached < o.prompt.length ? o.prompt.slice(o.cached, o.cached + 13) : [o.prompt[o.cached % o.prompt.length]!];
      pages.ensure(o.table, o.cached + tokens.length, bs);
      const params = steps.length % 2 === 0 ? { temperature: 1, minP: 0.05 } : { temperature: 1.1, topP: 0.8 };
      steps.push({ tokens, cachedTokens: o.cached, blockTable: o.table, sample: { params, seed: 7, outputIndex: o.cached } });
      o.cached += tokens.length;
    }
    steps.splice(seed % (steps.length + 1), 0, targetStep); // the target sits anywhere in the batch
    const before = model.stats().weightBytesRead;
    const out = await model.step(steps);
    weightBytes.push(model.stats().weightBytesRead - before);
    results.push(out[steps.indexOf(targetStep)]!);
  }
  return { results, weightBytes };
}

test('a sequence alone and inside batches of 2 to 67 mixed sequences: bitwise identical; each step reads the weights once', async (t) => {
  const dir = generatedModel('tiny');
  const model = LlamaModel.load(dir, { dtype: 'bfloat16', numBlocks: 67 * 20 });
  const c = model.config;
  // Bytes of every weight matrix: fused qkv, o, gate_up, down per layer, plus the lm head once.
  const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
  const perLayer = (c.numHeads + 2 * c.numKvHeads) * D * H + H * c.numHeads * D + 2 * I * H + H * I;
  const weightBytes = 2 * (c.numLayers * perLayer + c.vocabSize * H);
  const alone = await inBatches(model, 1, 1);
  t.deepEqual(alone.weightBytes, alone.weightBytes.map(() => weightBytes), 'a step reads each matrix once');
  for (const size of [2, 3, 8, 31, 67]) {
    const batched = await inBatches(model, size, size);
    for (let s = 0; s < alone.results.length; s++) {
      const a = alone.results[s]!, b = batched.results[s]!;
      t.true(bitsEqual(a.promptLogprobs!, b.promptLogprobs!), `batch ${size}, step ${s}: prompt logprobs`);
      t.deepEqual(b.promptTop, a.promptTop, `batch ${size}, step ${s}: prompt top-2`);
      t.deepEqual(b, a, `batch ${size}, step ${s}: sampled token and logprobs`);
    }
    t.deepEqual(batched.weightBytes, batched.weightBytes.map(() => weightBytes), `batch of ${size}: each step reads each weight matrix once`);
  }
  const { topPRows, topPFromRecords } = model.stats();
  t.true(topPRows > 100, `top-p rows sampled: ${topPRows}`);
  t.true(topPFromRecords >= 0.9 * topPRows, `${topPFromRecords} of ${topPRows} top-p rows drew their nucleus from the lm head records`);
  await model.close();
});
