// Batch and chunking invariance on the amx path (TROUPE_ISA=amx; native/README.md):
// its bf16 GEMM packs each step's activations once and multiplies on AMX tiles,
// for every M, so a sequence's log-probabilities and samples are bitwise the
// same however its prompt is chunked and whatever shares its batch.
import test from 'ava';
import type { SequenceStep } from '../../models/batch.js';
import { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';
import { loadNative } from '../../native/index.js';
import { bitsEqual, generatedModel, randomTokens, teacherForced } from './helpers.js';

const hasAmx = loadNative().availableIsas().includes('amx');
const amxTest = hasAmx ? test : test.skip;
const why = hasAmx ? '' : ' (skipped: this CPU or OS has no AMX-BF16)';
const PROMPT = randomTokens(150, 128256, 5);

amxTest(`amx: prompt chunks of 1, 7, 64 and the whole prompt give bitwise identical logprobs and samples${why}`, async (t) => {
  const model = LlamaModel.load(generatedModel('tiny'), { dtype: 'bfloat16', numBlocks: 64, isa: 'amx' });
  const runs = [];
  for (const chunk of [PROMPT.length, 1, 7, 64]) runs.push(await teacherForced(model, PROMPT, { chunk, topN: 3 }));
  for (const [i, chunk] of [1, 7, 64].entries()) {
    t.true(bitsEqual(runs[i + 1]!.logprobs, runs[0]!.logprobs), `chunk ${chunk} logprobs`);
    const { token, logprob, top } = runs[i + 1]!.last;
    const want = runs[0]!.last;
    t.deepEqual({ token, logprob, top }, { token: want.token, logprob: want.logprob, top: want.top }, `chunk ${chunk}: sampled token, logprob, top-3`);
  }
  // The amx path is a different arithmetic: close to avx512bf16's, not bitwise equal.
  const other = LlamaModel.load(generatedModel('tiny'), { dtype: 'bfloat16', numBlocks: 64, isa: 'avx512bf16' });
  const ref = await teacherForced(other, PROMPT, { topN: 3 });
  let worst = 0;
  for (let i = 0; i < ref.logprobs.length; i++) worst = Math.max(worst, Math.abs(ref.logprobs[i]! - runs[0]!.logprobs[i]!));
  t.true(worst < 0.25, `amx vs avx512bf16 prompt logprobs: worst difference ${worst} nats`);
  t.log(`amx vs avx512bf16: worst prompt-logprob difference ${worst} nats; bitwise equal: ${bitsEqual(ref.logprobs, runs[0]!.logprobs)}`);
  await other.close();
  await model.close();
});

amxTest(`amx: a sequence alone and inside batches of 2, 9 and 40 mixed sequences gives bitwise identical logprobs${why}`, async (t) => {
  const model = LlamaModel.load(generatedModel('tiny'), { dtype: 'bfloat16', numBlocks: 40 * 12, isa: 'amx' });
  const bs = model.kvCache.blockSize;
  const run = async (size: number) => {
    const pages = new PageAllocator(model.kvCache.numBlocks);
    const others = Array.from({ length: size - 1 }, (_, i) => ({ prompt: randomTokens(1 + ((i * 37 + size) % 60), 128256, size * 100 + i), cached: 0, table: [] as number[] }));
    const table: number[] = [];
    const out: Float32Array[] = [];
    for (let start = 0; start < PROMPT.length; start += 37) {
      const part = PROMPT.slice(start, start + 37);
      pages.ensure(table, start + part.length, bs);
      const target: SequenceStep = { tokens: part, cachedTokens: start, blockTable: table, promptLogprobs: { targets: part.map((_, i) => PROMPT[start + i + 1] ?? -1) } };
      const steps: SequenceStep[] = [];
      for (const o of others) {
        const tokens = o.cached < o.prompt.length ? o.prompt.slice(o.cached, o.cached + 13) : [o.prompt[0]!];
        pages.ensure(o.table, o.cached + tokens.length, bs);
        steps.push({ tokens, cachedTokens: o.cached, blockTable: o.table });
        o.cached += tokens.length;
      }
      steps.splice(size % (steps.length + 1), 0, target);
      const res = await model.step(steps);
      out.push(res[steps.indexOf(target)]!.promptLogprobs!);
    }
    return out;
  };
  const alone = await run(1);
  for (const size of [2, 9, 40]) {
    const batched = await run(size);
    alone.forEach((a, s) => t.true(bitsEqual(a, batched[s]!), `batch ${size}, step ${s}: prompt logprobs`));
  }
  await model.close();
});
