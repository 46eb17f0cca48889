// The forward pass against golden values from an independent PyTorch
// implementation of Llama 3.1 (test/fixtures/golden-tiny, see its README):
// float32 within 1e-4 (the long case checks positions past 8192, where
// llama3 RoPE scaling matters), the same top-5 and greedy continuation;
// bfloat16 within 5e-2. Also: the llama3 inverse frequencies.
import test from 'ava';
import { readLlamaConfig } from '../../models/config.js';
import { LlamaModel } from '../../models/llama.js';
import { ropeInverseFrequencies } from '../../models/rope.js';
import { GOLDEN_DIR, greedy, loadGolden, maxAbsDiff, teacherForced } from './helpers.js';
import { join } from 'node:path';
import { ISAS, loadNative, type Isa } from '../../native/index.js';

const golden = loadGolden();

function load(dtype: 'float32' | 'bfloat16', isa?: Isa): LlamaModel {
  return LlamaModel.load(GOLDEN_DIR, { dtype, maxModelLen: 9100, numBlocks: 600, ...(isa ? { isa } : {}) });
}

test('llama3 RoPE inverse frequencies match the golden values to 1e-6 relative', (t) => {
  const scaling = (factor: number) => ({ type: 'llama3' as const, factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  const cases: [number, number, number[]][] = [
    [128, 8, golden.llama3_rope_inv_freq.head_dim_128_factor_8],
    [64, 32, golden.llama3_rope_inv_freq.head_dim_64_factor_32],
  ];
  for (const [dim, factor, want] of cases) {
    const got = ropeInverseFrequencies(dim, 500000, scaling(factor));
    t.is(got.length, want.length);
    for (let i = 0; i < want.length; i++) t.true(Math.abs(got[i]! - want[i]!) <= 1e-6 * Math.abs(want[i]!), `dim ${dim} factor ${factor} [${i}]: ${got[i]} vs ${want[i]}`);
  }
  const cfg = readLlamaConfig(join(GOLDEN_DIR, 'config.json'));
  t.deepEqual(cfg.ropeScaling, scaling(8));
});

for (const dtype of ['float32', 'bfloat16'] as const) {
  const tol = dtype === 'float32' ? 1e-4 : 5e-2;
  for (const c of golden.cases) {
    test(`${dtype}: golden '${c.name}' (${c.tokens.length} tokens): teacher-forced logprobs within ${tol}${dtype === 'float32' ? ', top-5 and greedy 16 identical' : ''}`, async (t) => {
      const model = load(dtype);
      // A timer keeps firing while the prefill runs: the step is off the event loop.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const { logprobs, last } = await teacherForced(model, c.tokens);
      clearInterval(timer);
      if (c.tokens.length > 1000) t.true(ticks > 3, `event loop ran during a ${c.tokens.length}-token prefill (${ticks} ticks)`);
      const from = c.logprobs_from_position;
      const got = logprobs.subarray(from - 1, from - 1 + c.logprobs.length);
      const err = maxAbsDiff(got, c.logprobs);
      t.log(`${dtype} ${c.name}: max |logprob error| ${err.toExponential(2)} over positions ${from}..${c.tokens.length - 1}`);
      t.true(err <= tol, `max error ${err}`);
      if (dtype === 'float32') {
        t.deepEqual(last.top!.map((x) => x.id), c.last_top5_ids);
        t.true(maxAbsDiff(last.top!.map((x) => x.logprob), c.last_top5_logprobs) <= tol);
        t.deepEqual(await greedy(model, c.tokens, 16), c.greedy_next_16);
      }
      await model.close();
    });
  }
}

test('the whole model on every ISA path this CPU has: golden \'short\' within tolerance in both dtypes', async (t) => {
  const available = loadNative().availableIsas();
  const c = golden.cases[0]!;
  for (const isa of ISAS) {
    if (!available.includes(isa)) {
      t.log(`CPU lacks ISA '${isa}': the model is NOT tested on it here`);
      continue;
    }
    for (const [dtype, tol] of [['float32', 1e-4], ['bfloat16', 5e-2]] as const) {
      const model = load(dtype, isa);
      const { logprobs, last } = await teacherForced(model, c.tokens);
      const err = maxAbsDiff(logprobs.subarray(c.logprobs_from_position - 1), c.logprobs);
      t.true(err <= tol, `${isa} ${dtype}: max error ${err}`);
      if (dtype === 'float32') t.deepEqual(last.top!.map((x) => x.id), c.last_top5_ids, `${isa}: top-5`);
      await model.close();
    }
  }
});
