// The engine with FP8 options end to end (Troupe.start -> KV planner -> rank
// actor -> LlamaModel): --quantization fp8 and --kv-cache-dtype fp8 reach the
// model, the planner fits twice the tokens, and the engine's greedy tokens are
// those of the model driven directly with the same options; across tp2 x pp2
// ranks on threads, the same tokens and logprobs as one FP8 rank.
import test from 'ava';
import { Troupe } from '../../actors/engine/troupe.js';
import type { RankInfo } from '../../actors/messages/rank.js';
import { LlamaModel } from '../../models/llama.js';
import { resolveServeConfig } from '../../cli/serve-command.js';
import { generatedModel, greedy, randomTokens } from '../models/helpers.js';

const MODEL = generatedModel('tiny', 7);

test('Troupe.start with quantization fp8 and an fp8 KV cache: planner doubles the tokens, tokens match the model run directly', async (t) => {
  const common = { model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, log: () => {} };
  const bf16 = await Troupe.start(common);
  const bf16Tokens = bf16.kvPlan.tokens;
  await bf16.shutdown();
  const llm = await Troupe.start({ ...common, quantization: 'fp8', kvCacheDtype: 'fp8' });
  t.teardown(() => llm.shutdown());
  t.is(llm.kvPlan.tokens, 2 * bf16Tokens);
  const prompt = randomTokens(40, 128256, 5);
  const [r] = await llm.generate([prompt], { temperature: 0, maxTokens: 6, ignoreEos: true });
  const direct = LlamaModel.load(MODEL, { quantization: 'fp8', kvCacheDtype: 'fp8', numBlocks: 8, threads: 1 });
  t.teardown(() => direct.close());
  t.is(direct.stats().linearDtypes.down[0], 'fp8_e4m3');
  t.deepEqual(r!.outputs[0]!.tokenIds, await greedy(direct, prompt, 6));
});

test('serve flags --quantization and --kv-cache-dtype reach the engine options', (t) => {
  const config = resolveServeConfig(MODEL, { quantization: 'fp8', kvCacheDtype: 'fp8_e5m2' }, {});
  t.is(config.engine.quantization, 'fp8');
  t.is(config.engine.kvCacheDtype, 'fp8_e5m2');
});

test('Troupe.start with quantization fp8 on tp2 x pp2 threads: the tokens and logprobs of one FP8 rank, FP8 linears on every rank', async (t) => {
  const common = { model: MODEL, kvCacheMemory: '4MiB', maxModelLen: 512, threads: 1, maxNumBatchedTokens: 64, quantization: 'fp8', log: () => {} };
  const requests = [0, 1, 2].map((i) => ({ prompt: randomTokens(20 + 31 * i, 128256, 40 + i), params: { temperature: 0, maxTokens: 8, ignoreEos: true, logprobs: 2 } }));
  const run = async (llm: Troupe) => (await Promise.all(requests.map((r) => llm.generate([r.prompt], r.params)))).map((g) => ({ tokens: g[0]!.outputs[0]!.tokenIds, logprobs: g[0]!.outputs[0]!.logprobs }));
  const one = await Troupe.start(common);
  const want = await run(one);
  await one.shutdown();
  const llm = await Troupe.start({ ...common, parallel: { tensorParallelSize: 2, pipelineParallelSize: 2, placement: 'thread', allowOversubscription: true } });
  t.teardown(() => llm.shutdown());
  t.deepEqual(await run(llm), want);
  t.true(want.every((o) => o.tokens.length === 8));
  const info = await Promise.all([0, 1, 2, 3].map((r) =>
    llm.system.refFor<{ type: 'info'; replyTo: unknown }>(`troupe/engine/ranks/rank${r}`).ask<RankInfo>((replyTo) => ({ type: 'info', replyTo }), { timeoutMs: 30_000 })));
  for (const i of info) {
    const d = i.linearDtypes;
    t.deepEqual([...d.qkv, ...d.o, ...d.gateUp, ...d.down], Array(4).fill('fp8_e4m3'), `rank ${i.stage}/${i.tpRank}: one layer per stage, every linear FP8`);
    t.is(d.lmHead, i.stage === 1 ? 'bf16' : 'none', 'online FP8 keeps the (tied) lm head bf16, on the last stage');
    t.true(i.allReduces > 0 && i.steps > 0);
  }
});
