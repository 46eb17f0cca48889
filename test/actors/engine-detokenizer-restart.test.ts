// The engine's batched detokenization survives its detokenizer restarting
// mid-generation: each step's tokens for every request go in one batch; when
// the detokenizer is gone or fresh, the front rebuilds its state (or
// recomputes the step) and every stream goes on with no delta repeated or lost.
import test from 'ava';
import { lastValueFrom, toArray } from 'rxjs';
import { PATHS, Troupe } from '../../actors/engine/troupe.js';
import type { GenerationParams } from '../../actors/engine/request-params.js';
import type { DetokenizerMessage } from '../../actors/detokenizer/messages.js';
import { generatedModel, randomTokens } from '../models/helpers.js';

const MODEL = generatedModel('tiny', 7);
const VOCAB = 128256;

test('a detokenizer killed mid-generation: every request streams the same tokens and text as without it, and no state is left', async (t) => {
  const llm = await Troupe.start({ model: MODEL, kvCacheMemory: '16MiB', maxModelLen: 1024, threads: 1, log: () => {} });
  t.teardown(() => llm.shutdown());
  const requests = Array.from({ length: 10 }, (_, i) => ({
    prompt: randomTokens(4 + i * 7, VOCAB, 300 + i),
    params: { temperature: 0, maxTokens: 24, ignoreEos: true, ...(i % 3 === 0 ? { repetitionPenalty: 1.2 } : {}) } satisfies GenerationParams,
  }));
  const expected = await Promise.all(requests.map((r) => llm.generate([r.prompt], r.params)));

  const detokenizer = llm.system.refFor<DetokenizerMessage>(PATHS.detokenizer);
  let kills = 0;
  let finished = 0;
  const unfinishedAtKill: number[] = [];
  const streams = requests.map((r, i) => lastValueFrom(llm.stream([...r.prompt], r.params).pipe(toArray())).then((deltas) => {
    finished++;
    return { i, deltas };
  }));
  // kill it twice while the requests run
  const killer = (async () => {
    for (const delay of [30, 60]) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      unfinishedAtKill.push(requests.length - finished);
      llm.system.kill(detokenizer, 'test: killed mid-generation');
      kills++;
    }
  })();
  const all = await Promise.all(streams);
  await killer;
  t.is(kills, 2);
  t.true(unfinishedAtKill[0]! > 0, `requests were running when the detokenizer was killed (${unfinishedAtKill.join(', ')} unfinished)`);
  for (const { i, deltas } of all) {
    const want = expected[i]![0]!.outputs[0]!;
    t.deepEqual(deltas.flatMap((d) => d.tokenIds), want.tokenIds, `request ${i}: each token streamed exactly once`);
    t.is(deltas.map((d) => d.text).join(''), want.text, `request ${i}: the same text`);
    t.is(deltas[deltas.length - 1]!.finishReason, 'length');
  }
  for (let k = 0; ; k++) {
    const states = await detokenizer.ask<number>((replyTo) => ({ type: 'count', replyTo }), { timeoutMs: 10_000 });
    if (states === 0) break;
    if (k === 100) t.fail(`${states} requests left state in the detokenizer`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.like(await llm.kvUsage(), { usage: 0, running: 0, waiting: 0 });
});
