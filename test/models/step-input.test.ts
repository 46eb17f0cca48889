// A step's flat batch is validated before any native work: a bad block
// table, slot, position or token is a RangeError naming it, never a crash,
// and the model keeps working afterwards.
import test from 'ava';
import { packStep } from '../../models/batch.js';
import { LlamaModel } from '../../models/llama.js';
import { GOLDEN_DIR } from './helpers.js';

test('bad step inputs are refused with the reason, and the model keeps working', async (t) => {
  const model = LlamaModel.load(GOLDEN_DIR, { numBlocks: 4, blockSize: 16 });
  const good = () => packStep([{ tokens: [1, 2, 3], cachedTokens: 0, blockTable: [2], sample: { params: { temperature: 0 }, seed: 0, outputIndex: 0 } }], 16).input;
  const cases: [string, (i: ReturnType<typeof good>) => void, RegExp][] = [
    ['page outside the cache', (i) => (i.blockTables[0] = 9), /block table entry 0 = 9 is not a page of the cache \(0\.\.3\)/],
    ['slot not where the block table puts it', (i) => (i.slotMapping[1] = 5), /token 1: slot 5 but its block table puts position 1 in slot 33/],
    ['position disagreeing with the counts', (i) => (i.positions[2] = 7), /token 2: position 7 but sequence 0 puts it at 2/],
    ['token outside the vocabulary', (i) => (i.tokens[0] = 5000), /token 0: id 5000 is outside the vocabulary \(0\.\.1023\)/],
    ['query lens not adding up', (i) => ((i.queryLens[0] = 2), (i.contextLens[0] = 2)), /query lens add up to 2, not the 3 tokens/],
    ['context shorter than the queries', (i) => (i.contextLens[0] = 2), /need 0 <= queryLen <= contextLen/],
    ['sample row past the batch', (i) => (i.sampleRows![0] = 3), /sample row 3 is not a token row/],
  ];
  for (const [what, spoil, message] of cases) {
    const input = good();
    spoil(input);
    await t.throwsAsync(model.stepFlat(input), { instanceOf: RangeError, message }, what);
  }
  await t.throwsAsync(model.stepFlat({ ...good(), tokens: new Float32Array(3) as unknown as Int32Array }), { instanceOf: TypeError, message: /input\.tokens must be a Int32Array, got Float32Array/ });
  const out = await model.stepFlat(good());
  t.is(out.sampled.length, 1);
  t.throws(() => model.step([{ tokens: [1], cachedTokens: 0, blockTable: [], sample: { params: { temperature: 0 }, seed: 0, outputIndex: 0 } }]), { message: /1 tokens need 1 KV pages, its block table has 0/ });
  t.throws(() => model.step([{ tokens: [1], cachedTokens: 0, blockTable: [0], sample: { params: { temperature: -1 }, seed: 0, outputIndex: 0 } }]), { message: /temperature must be a number >= 0/ });
  await model.close();
  await t.throwsAsync(async () => model.stepFlat(good()), { message: /is closed/ });
});

test('steps queue: concurrent calls run one after another with the results of sequential calls', async (t) => {
  const model = LlamaModel.load(GOLDEN_DIR, { numBlocks: 8 });
  const step = (table: number[], seed: number) => model.step([{ tokens: [5, 6, 7, 8], cachedTokens: 0, blockTable: table, sample: { params: { temperature: 1 }, seed, outputIndex: 0 } }]);
  const together = await Promise.all([step([0], 1), step([1], 2), step([2], 3)]);
  const apart = [await step([0], 1), await step([1], 2), await step([2], 3)];
  t.deepEqual(together, apart);
  await model.close();
});
