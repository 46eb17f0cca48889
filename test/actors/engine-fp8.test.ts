// The engine with FP8 options end to end (Troupe.start -> KV planner -> rank
// actor -> LlamaModel): --quantization fp8 and --kv-cache-dtype fp8 reach the
// model, the planner fits twice the tokens, and the engine's greedy tokens are
// those of the model driven directly with the same options.
import test from 'ava';
import { Troupe } from '../../actors/engine/troupe.js';
import { LlamaModel } from '../../models/llama.js';
import { resolveServeConfig } from '../../gateway/serve-command.js';
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
