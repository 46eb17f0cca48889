// The model against the fp64 reference (reference-model.ts) on the `tiny`
// preset, teacher forced: float32 within 1e-4; bfloat16 within 5e-2 of the
// reference with bf16-rounded matrix inputs (bfloat16 mode's definition), and
// logged against the pure fp64 one. The prompt crosses several KV pages and
// GQA groups; fp16 and fp32 checkpoints are converted at load and checked the same way.
import test from 'ava';
import { LlamaModel } from '../../models/llama.js';
import { generatedModel, maxAbsDiff, randomTokens, teacherForced } from './helpers.js';
import { ReferenceLlama } from './reference-model.js';

const TOKENS = randomTokens(40, 128256, 11);

for (const [dtype, tol] of [['float32', 1e-4], ['bfloat16', 5e-2]] as const) {
  for (const checkpoint of ['bf16', 'fp16', 'fp32'] as const) {
    test(`tiny (${checkpoint} checkpoint) in ${dtype} matches the fp64 reference within ${tol}, teacher forced`, async (t) => {
      const dir = generatedModel('tiny', 3, checkpoint);
      const ref = new ReferenceLlama(dir, { bf16: dtype === 'bfloat16' }).logprobs(TOKENS);
      const want = TOKENS.slice(1).map((tok, i) => ref[i]![tok]!);
      const model = LlamaModel.load(dir, { dtype, numBlocks: 16, blockSize: 4 });
      const { logprobs, last } = await teacherForced(model, TOKENS, { chunk: 13 });
      const err = maxAbsDiff(logprobs, want);
      t.log(`${checkpoint} checkpoint, ${dtype}: max |logprob error| ${err.toExponential(2)}`);
      t.true(err <= tol, `max error ${err}`);
      // The top-5 after the whole prompt, against the reference's last row.
      const lastRow = ref[TOKENS.length - 1]!;
      const refTop = Array.from(lastRow.keys()).sort((a, b) => lastRow[b]! - lastRow[a]!).slice(0, 5);
      t.true(maxAbsDiff(last.top!.map((x) => x.logprob), refTop.map((id) => lastRow[id]!)) <= tol);
      if (dtype === 'float32') t.deepEqual(last.top!.map((x) => x.id), refTop);
      await model.close();
    });
  }
}
