// The serving benchmark's pieces (not a benchmark run): the random dataset,
// arrival gaps, percentiles, and a few requests against a test gateway to
// check the client's timing and token counts end to end.
import test from 'ava';
import { loadTokenizer, randomDataset } from '../../bench/serving/dataset.js';
import { distribution, formatFigures, percentile } from '../../bench/serving/metrics.js';
import { arrivalGaps, SeededRandom } from '../../bench/serving/random.js';
import { runServing } from '../../bench/serving/run.js';
import { startGateway, TEST_MODEL_NAME } from '../gateway/helpers.js';

test('the random dataset: unique prompts of about --input-len tokens, reproducible from the seed', (t) => {
  const tokenizer = loadTokenizer();
  const options = { numPrompts: 6, inputLen: 40, outputLen: 8, rangeRatio: 0, seed: 3, format: 'text' as const, tokenizer };
  const a = randomDataset(options);
  t.deepEqual(randomDataset(options), a);
  t.is(new Set(a.map((r) => r.prompt)).size, 6, 'unique');
  for (const r of a) {
    t.is(typeof r.prompt, 'string');
    t.true(Math.abs(tokenizer.encode(r.prompt as string, { addSpecialTokens: false }).length - 40) <= 2, 're-tokenizes to about the length');
    t.is(r.outputLen, 8);
  }
  const ranged = randomDataset({ ...options, format: 'tokens', rangeRatio: 0.5, numPrompts: 50 });
  t.true(ranged.every((r) => Array.isArray(r.prompt) && r.promptLen >= 20 && r.promptLen <= 60));
  t.true(new Set(ranged.map((r) => r.promptLen)).size > 5);
});

test('arrivals: all at once for an infinite rate, mean gap 1 / rate otherwise', (t) => {
  t.deepEqual(arrivalGaps(3, Number.POSITIVE_INFINITY, 1, new SeededRandom(1)), [0, 0, 0]);
  for (const burstiness of [1, 0.5, 3]) {
    const gaps = arrivalGaps(20_000, 4, burstiness, new SeededRandom(2));
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    t.true(Math.abs(mean - 0.25) < 0.01, `burstiness ${burstiness}: mean gap ${mean}`);
  }
});

test('percentiles interpolate as numpy does', (t) => {
  t.is(percentile([1, 2, 3, 4], 50), 2.5);
  t.true(Math.abs(percentile([1, 2, 3, 4], 99) - 3.97) < 1e-12);
  const d = distribution([0.001, 0.003], 1000);
  t.true(Math.abs(d.mean - 2) < 1e-12 && Math.abs(d.median - 2) < 1e-12 && Math.abs(d.p99 - 2.98) < 1e-12);
});

test('a small run against a real gateway: every request timed, exact token counts from usage', async (t) => {
  const gateway = await startGateway();
  t.teardown(() => gateway.close());
  const requests = randomDataset({ numPrompts: 4, inputLen: 12, outputLen: 5, rangeRatio: 0, seed: 1, format: 'tokens' });
  const { figures, outcomes } = await runServing(
    { url: `${gateway.url}/v1/completions`, model: TEST_MODEL_NAME, ignoreEos: true },
    requests, { requestRate: Number.POSITIVE_INFINITY, burstiness: 1, maxConcurrency: 2, seed: 0, progress: false },
  );
  t.is(figures.completed, 4);
  t.is(figures.failed, 0);
  t.is(figures.totalOutputTokens, 20);
  t.is(figures.totalInputTokens, 4 * 12, 'token prompts: no BOS added');
  for (const o of outcomes) {
    t.true(o.ttft > 0 && o.latency >= o.ttft);
    t.is(o.itl.length, 4, 'one gap per token after the first (the finish marker is not a token)');
  }
  t.regex(formatFigures(figures, { requestRate: Number.POSITIVE_INFINITY, maxConcurrency: 2 }), /Successful requests:\s+4/);
});
