// The engine end to end on the generated `tiny` model: batching invariance,
// preemption, prefix caching, seeded sampling, a crash survived, extensions,
// parameter errors. Outputs are compared token for token.
import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { Troupe, type TroupeOptions } from '../../actors/engine/troupe.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import type { RequestEvent } from '../../actors/messages/front.js';
import { moduleActor } from '../../runtime/index.js';
import { generatedModel, randomTokens } from '../models/helpers.js';

const MODEL = generatedModel('tiny', 7);
const VOCAB = 128256;
const quiet = { log: () => {} };

async function engine(t: { teardown(fn: () => Promise<void> | void): void }, options: Partial<TroupeOptions> = {}) {
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '16MiB', maxModelLen: 2048, threads: 1, ...quiet, ...options });
  t.teardown(() => llm.shutdown());
  return llm;
}

/** KV usage once the engine has caught up (an abort for a stop string reaches the scheduler just after the output). */
async function settled(llm: Troupe) {
  for (let i = 0; ; i++) {
    const usage = await llm.kvUsage();
    if ((usage.usage === 0 && usage.running === 0) || i === 100) return usage;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** 64 prompts of mixed lengths (token ids, so no tokenizer quirks), with mixed parameters. */
function mixedRequests(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    prompt: randomTokens(3 + ((i * 37) % 120), VOCAB, 1000 + i),
    params: {
      temperature: 0,
      maxTokens: 4 + (i % 13),
      ...(i % 3 === 0 ? { repetitionPenalty: 1.3 } : {}),
      ...(i % 5 === 0 ? { logitBias: { 42: 5 } } : {}),
      ignoreEos: true,
    } satisfies GenerationParams,
  }));
}

async function oneAtATime(llm: Troupe, requests: ReturnType<typeof mixedRequests>) {
  const out: number[][] = [];
  for (const r of requests) out.push((await llm.generate([r.prompt], r.params))[0]!.outputs[0]!.tokenIds);
  return out;
}

test('64 concurrent requests of mixed lengths and parameters get the same tokens as each alone', async (t) => {
  const llm = await engine(t, { maxNumBatchedTokens: 128 });
  const requests = mixedRequests(64);
  const alone = await oneAtATime(llm, requests);
  await llm.resetPrefixCache();
  const together = await Promise.all(requests.map((r) => llm.generate([r.prompt], r.params)));
  t.deepEqual(together.map((g) => g[0]!.outputs[0]!.tokenIds), alone);
  t.true(alone.every((tokens, i) => tokens.length === requests[i]!.params.maxTokens));
});

test('with a KV pool too small for all, every request completes with the same output and preemptions are counted', async (t) => {
  const requests = mixedRequests(24).map((r) => ({ ...r, params: { ...r.params, maxTokens: 40 } }));
  const roomy = await engine(t);
  const alone = await oneAtATime(roomy, requests);
  // 640 tokens of KV (20 blocks of 32): the 24 requests (up to ~160 tokens each) cannot all hold their KV at once
  const tight = await engine(t, { kvCacheMemory: 40 * 16 * 2 * 2 * 2 * 8 * 2, maxModelLen: 256, enablePrefixCaching: false });
  const together = await Promise.all(requests.map((r) => tight.generate([r.prompt], r.params)));
  t.deepEqual(together.map((g) => g[0]!.outputs[0]!.tokenIds), alone);
  const usage = await tight.kvUsage();
  t.true(usage.preemptions > 0, `preemptions: ${usage.preemptions}`);
  t.is(usage.usage, 0, 'every block is back in the pool');
});

test('prefix caching gives identical output and reports hits', async (t) => {
  const llm = await engine(t);
  const shared = randomTokens(200, VOCAB, 5);
  const params = { temperature: 0, maxTokens: 10, ignoreEos: true };
  const first = await llm.generate([[...shared, 1, 2, 3]], params);
  const before = await llm.kvUsage();
  const second = await llm.generate([[...shared, 1, 2, 3]], params);
  const after = await llm.kvUsage();
  t.deepEqual(second[0]!.outputs[0]!.tokenIds, first[0]!.outputs[0]!.tokenIds);
  t.true(after.prefixHits - before.prefixHits >= 192, `hits: ${after.prefixHits - before.prefixHits}`);
  const uncached = await engine(t, { enablePrefixCaching: false });
  const cold = await uncached.generate([[...shared, 1, 2, 3]], params);
  t.deepEqual(cold[0]!.outputs[0]!.tokenIds, first[0]!.outputs[0]!.tokenIds);
  t.is((await uncached.kvUsage()).prefixHits, 0);
});

test('seeded sampling reproduces across batch mixes and preemption', async (t) => {
  const params: GenerationParams = { temperature: 1.0, topP: 0.9, topK: 50, seed: 1234, maxTokens: 24, ignoreEos: true };
  const prompt = randomTokens(30, VOCAB, 77);
  const roomy = await engine(t);
  const [alone] = await roomy.generate([prompt], params);
  const noise = mixedRequests(16).map((r) => roomy.generate([r.prompt], { ...r.params, temperature: 0.8, seed: 9 }));
  const [mixed] = await roomy.generate([prompt], params);
  await Promise.all(noise);
  t.deepEqual(mixed!.outputs[0]!.tokenIds, alone!.outputs[0]!.tokenIds);
  const tight = await engine(t, { kvCacheMemory: 12 * 16 * 2 * 2 * 2 * 8 * 2, maxModelLen: 160, enablePrefixCaching: false });
  const crowd = mixedRequests(8).map((r) => tight.generate([r.prompt.slice(0, 60)], { ...r.params, maxTokens: 40 }));
  const [preempted] = await tight.generate([prompt], params);
  await Promise.all(crowd);
  t.true((await tight.kvUsage()).preemptions > 0);
  t.deepEqual(preempted!.outputs[0]!.tokenIds, alone!.outputs[0]!.tokenIds);
  const [n2] = await roomy.generate([prompt], { ...params, n: 2 });
  t.deepEqual(n2!.outputs[0]!.tokenIds, alone!.outputs[0]!.tokenIds, 'sample 0 of n uses the request seed');
  t.notDeepEqual(n2!.outputs[1]!.tokenIds, alone!.outputs[0]!.tokenIds, 'sample 1 of n differs');
});

test('a rank crash mid-generation is survived: every request completes with the same output, no delta repeated or lost', async (t) => {
  const requests = mixedRequests(12).map((r) => ({ ...r, params: { ...r.params, maxTokens: 30 } }));
  const healthy = await engine(t);
  const expected = await oneAtATime(healthy, requests);
  const dir = mkdtempSync(join(tmpdir(), 'troupe-fault-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const onceFile = join(dir, 'crashed');
  const faulty = await engine(t, { faults: { crashAtStep: 6, onceFile } });
  const streams = requests.map((r) => lastValueFrom(faulty.stream([...r.prompt], r.params).pipe(toArray())));
  const all = await Promise.all(streams);
  for (let i = 0; i < requests.length; i++) {
    const deltas = all[i]!;
    t.deepEqual(deltas.flatMap((d) => d.tokenIds), expected[i], `request ${i}: the tokens streamed, each exactly once`);
    t.is(deltas[deltas.length - 1]!.finishReason, 'length');
  }
  t.true(existsSync(onceFile), 'the fault was injected');
  const usage = await faulty.kvUsage();
  t.is(usage.usage, 0);
});

test('an extension actor spawned into the tree watches request events', async (t) => {
  const llm = await engine(t);
  const logger = await llm.spawnExtension('request-logger', moduleActor<RequestEvent>(new URL('./fixtures/request-logger.js', import.meta.url), 'RequestLogger'));
  llm.watchRequests(logger);
  await llm.generate([randomTokens(5, VOCAB, 1), randomTokens(9, VOCAB, 2)], { maxTokens: 3, temperature: 0, ignoreEos: true });
  const seen = await logger.ask<RequestEvent[]>((replyTo) => ({ type: 'dump', replyTo }) as never);
  t.is(seen.filter((e) => e.type === 'submitted').length, 2);
  t.deepEqual(seen.filter((e) => e.type === 'finished').map((e) => (e as { outputTokens: number }).outputTokens), [3, 3]);
  t.is(llm.system.placementOf(logger)?.kind, 'local');
  t.true(logger.path.startsWith('troupe/extensions/'));
});

test('bad parameters and prompts get clear errors; nothing is left behind', async (t) => {
  const llm = await engine(t);
  const prompt = randomTokens(5, VOCAB, 3);
  await t.throwsAsync(llm.generate([prompt], { temperature: -1 }), { message: /temperature must be a number >= 0/ });
  await t.throwsAsync(llm.generate([prompt], { topP: 0 }), { message: /topP must be in \(0, 1\]/ });
  await t.throwsAsync(llm.generate([prompt], { maxTokens: 0 }), { message: /maxTokens must be an integer in \[1,/ });
  await t.throwsAsync(llm.generate([prompt], { n: 0 }), { message: /n must be an integer in \[1, 16\]/ });
  await t.throwsAsync(llm.generate([prompt], { stop: [''] }), { message: /stop must be a non-empty string/ });
  await t.throwsAsync(llm.generate([prompt], { stop: ['\ud800'] }), { message: /unpaired UTF-16 surrogate/ });
  await t.throwsAsync(llm.generate([prompt], { bestOf: 2 } as never), { message: /bestOf must be one of the supported parameters/ });
  await t.throwsAsync(llm.generate([[VOCAB + 5]], {}), { message: /out of range/ });
  await t.throwsAsync(llm.generate([randomTokens(2048, VOCAB, 4)], { maxTokens: 1 }), { message: /2048|max_model_len/ });
  const usage = await llm.kvUsage();
  t.like(usage, { running: 0, waiting: 0, usage: 0 });
});

test('startup: max_model_len defaults to the model context, capped to the KV budget with a message; an impossible one is refused', async (t) => {
  const lines: string[] = [];
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '4MiB', threads: 1, log: (l) => lines.push(l) });
  t.teardown(() => llm.shutdown());
  t.regex(lines.join('\n'), /max_model_len capped from 131072 \(max_position_embeddings\) to \d+/);
  t.regex(lines.join('\n'), /KV cache: \d+ tokens \(\d+ blocks of 32\), 4\.00 MiB; max concurrency 1\.00x at max_model_len \d+/);
  await t.throwsAsync(Troupe.start({ model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 100_000, ...quiet }), { message: /--max-model-len 100000 needs .* raise --kv-cache-memory or lower --max-model-len/ });
  await t.throwsAsync(Troupe.start({ model: MODEL, cpuOffloadGb: 4, ...quiet }), { message: /--cpu-offload-gb/ });
});

test('logprobs, prompt logprobs and stop strings come through the whole engine', async (t) => {
  const llm = await engine(t);
  const prompt = randomTokens(20, VOCAB, 11);
  const [plain] = await llm.generate([prompt], { temperature: 0, maxTokens: 6, ignoreEos: true });
  const [withLogprobs] = await llm.generate([prompt], { temperature: 0, maxTokens: 6, ignoreEos: true, logprobs: 3, promptLogprobs: 1 });
  const out = withLogprobs!.outputs[0]!;
  t.deepEqual(out.tokenIds, plain!.outputs[0]!.tokenIds, 'asking for logprobs changes nothing else');
  t.is(out.logprobs!.length, 6);
  for (const lp of out.logprobs!) {
    t.true(lp.logprob <= 0);
    t.is(lp.top!.length, 3);
    t.is(lp.top![0]!.id, lp.token, 'greedy: the sampled token is the most likely');
  }
  const promptLogprobs = withLogprobs!.promptLogprobs!;
  t.is(promptLogprobs.length, 20);
  t.is(promptLogprobs[0], null, 'nothing before the first token');
  t.true(promptLogprobs.slice(1).every((p) => p !== null && p.logprob <= 0 && p.top!.length === 1));
  // a stop string taken from the greedy text itself ends the output right before it
  const text = plain!.outputs[0]!.text;
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
  if (stop.trim().length === 3) {
    const [stopped] = await llm.generate([prompt], { temperature: 0, maxTokens: 6, ignoreEos: true, stop: [stop] });
    t.is(stopped!.outputs[0]!.finishReason, 'stop');
    t.is(stopped!.outputs[0]!.text, text.slice(0, text.indexOf(stop)));
  } else {
    t.log(`greedy text ${JSON.stringify(text)} has no 3-character stop string in its middle; stop strings are covered by the detokenizer tests`);
  }
  t.like(await settled(llm), { running: 0, usage: 0 });
});
