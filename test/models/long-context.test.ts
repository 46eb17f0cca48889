// A 131072-token prompt on `tiny-long` (1 layer, 1 kv head of dim 16) runs to
// completion in chunks of 8192, sampling after the last: the positions past
// the original 8192 use llama3-scaled RoPE, the pages span the whole context,
// and memory stays bounded by the KV cache: the step's scratch depends on the
// chunk, not on the context, and the process grows by no more than the cache,
// the weights and one chunk's scratch. Wall time is measured and logged, not
// asserted.
import test from 'ava';
import { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';
import { generatedModel, randomTokens } from './helpers.js';

const CONTEXT = 131072;
const CHUNK = 8192;

test('a 131072-token prompt on tiny-long completes with memory bounded by the KV cache', async (t) => {
  t.timeout(8 * 60_000);
  const dir = generatedModel('tiny-long');
  const rssBefore = process.memoryUsage().rss;
  const model = LlamaModel.load(dir, { maxModelLen: CONTEXT, numBlocks: CONTEXT / 16 + 1, blockSize: 16 });
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const table: number[] = [];
  const prompt = randomTokens(CONTEXT, 128256, 31);
  let peakRss = process.memoryUsage().rss;
  let token = -1;
  let logprob = Number.NaN;
  const started = performance.now();
  for (let start = 0; start < CONTEXT; start += CHUNK) {
    const part = prompt.slice(start, start + CHUNK);
    pages.ensure(table, start + part.length, 16);
    const last = start + CHUNK >= CONTEXT;
    const [r] = await model.step([
      { tokens: part, cachedTokens: start, blockTable: table, ...(last ? { sample: { params: { temperature: 0 }, seed: 0, outputIndex: 0 } } : {}) },
    ]);
    if (last) ({ token = -1, logprob = Number.NaN } = r!);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const seconds = (performance.now() - started) / 1000;
  const stats = model.stats();
  t.log(`131072 tokens in ${seconds.toFixed(1)} s (${(CONTEXT / seconds).toFixed(0)} tok/s, ${stats.threads} threads); KV cache ${(stats.kvCacheBytes / 2 ** 20).toFixed(1)} MiB, weights ${(model.residentWeightBytes / 2 ** 20).toFixed(1)} MiB, peak scratch ${(stats.peakScratchBytes / 2 ** 20).toFixed(1)} MiB, RSS +${((peakRss - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
  t.true(token >= 0 && token < 128256, `sampled token ${token}`);
  t.true(Number.isFinite(logprob) && logprob <= 0, `its logprob ${logprob}`);
  t.is(stats.tokens, CONTEXT);
  t.is(stats.kvCacheBytes, model.kvCache.numBlocks * 2 * 16 * 16 * 2, 'bf16 K and V of one kv head of 16, 16 slots a page');
  // Scratch is per chunk: activations of 8192 tokens, not per context.
  const c = model.config;
  const perToken = 4 * (4 * c.hiddenSize + (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim + 3 * c.intermediateSize) + 2 * c.intermediateSize;
  t.true(stats.peakScratchBytes <= CHUNK * perToken, `scratch ${stats.peakScratchBytes} bytes <= ${CHUNK} tokens x ${perToken}`);
  const bound = stats.kvCacheBytes + model.residentWeightBytes + stats.peakScratchBytes + 256 * 2 ** 20;
  t.true(peakRss - rssBefore <= bound, `RSS grew ${peakRss - rssBefore} bytes, bound ${bound}`);
  await model.close();
});
