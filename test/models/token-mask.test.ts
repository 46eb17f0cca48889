// Grammar token masks in the native sampler (native/src/sampling/sampling.h
// tile_lse with a mask): a disallowed token is never chosen, greedy or sampled,
// under every sampling mode; logprobs are those of the masked distribution;
// rows without a mask are unchanged; and the model's lm head applies the mask
// the same way (tile summaries and records included), batch invariantly.
import test from 'ava';
import { loadNative } from '../../native/index.js';
import { loadProbes } from '../../native/probes.js';
import type { SequenceStep } from '../../models/batch.js';
import { packSampling, type SampleRequest, type SamplingParams } from '../../models/sampling.js';
import { generatedModel, randomTokens } from './helpers.js';
import { LlamaModel } from '../../models/llama.js';
import { PageAllocator } from '../../models/pages.js';

const native = loadProbes();

function logitsRow(V: number, seed: number, scale = 3): Float32Array {
  const ids = randomTokens(V, 1 << 20, seed);
  return Float32Array.from(ids, (x) => ((x / (1 << 20)) * 2 - 1) * scale);
}

/** A mask allowing exactly `allowed`. */
function maskOf(V: number, allowed: Iterable<number>): Uint32Array {
  const m = new Uint32Array(Math.ceil(V / 32));
  for (const id of allowed) m[id >>> 5] = (m[id >>> 5]! | (1 << (id & 31))) >>> 0;
  return m;
}
const isAllowed = (m: Uint32Array, id: number) => ((m[id >>> 5]! >>> (id & 31)) & 1) === 1;

const MODES: Record<string, SamplingParams> = {
  greedy: { temperature: 0 },
  plain: { temperature: 1 },
  hot: { temperature: 1.7 },
  cold: { temperature: 0.3 },
  topK: { temperature: 1, topK: 50 }, // more than the allowed tokens of the sparse masks
  topP: { temperature: 0.8, topP: 0.9 },
  minP: { temperature: 1, minP: 0.05 },
  penalized: { temperature: 1, repetitionPenalty: 1.3, frequencyPenalty: 0.5, logitBias: { 5: 50 } },
  penalizedGreedy: { temperature: 0, repetitionPenalty: 1.3, logitBias: { 7: 80 } },
  logprobs: { temperature: 1, logprobs: 5 },
};

test('a masked-out token is never chosen, in any sampling mode, whatever the mask', (t) => {
  const V = 20000; // several vocab tiles, most of them fully masked by the sparse masks
  const masks = [
    maskOf(V, [3]),
    maskOf(V, [0, 19999]),
    maskOf(V, Array.from({ length: 12 }, (_, i) => 4096 * (i % 5) + 31 * i)),
    maskOf(V, Array.from({ length: 9000 }, (_, i) => (i * 7919) % V)),
  ];
  let draws = 0;
  for (const [name, params] of Object.entries(MODES)) {
    for (let m = 0; m < masks.length; m++) {
      const rows: SampleRequest[] = [];
      const logits = new Float32Array(8 * V);
      for (let r = 0; r < 8; r++) {
        const row = logitsRow(V, 100 * m + r, 4);
        row[5] = 50; // the best raw token is masked out in most masks (and biased up in `penalized`)
        logits.set(row, r * V);
        rows.push({ params, seed: 11 + r, outputIndex: r, mask: masks[m]!, promptTokens: [5, 9], outputTokens: [5] });
      }
      for (const summaries of [true, false]) {
        const out = native.sampleLogits(logits, V, packSampling(rows), { summaries });
        for (let r = 0; r < 8; r++) {
          draws++;
          if (!isAllowed(masks[m]!, out.tokens[r]!)) t.fail(`${name}, mask ${m}, row ${r}: token ${out.tokens[r]} is masked out`);
        }
      }
    }
  }
  t.is(draws, Object.keys(MODES).length * masks.length * 8 * 2);
});

test('logprobs are those of the masked distribution; unmasked rows in the same batch are unchanged', (t) => {
  const V = 9000;
  const a = logitsRow(V, 1);
  const b = logitsRow(V, 2);
  const allowed = [10, 20, 4100, 8999];
  const mask = maskOf(V, allowed);
  const both = new Float32Array(2 * V);
  both.set(a, 0);
  both.set(b, V);
  const params = { temperature: 1, logprobs: 3 };
  const out = native.sampleLogits(both, V, packSampling([{ params, seed: 5, outputIndex: 0, mask }, { params, seed: 6, outputIndex: 0 }]));
  // masked row: log-softmax over the allowed tokens only (fp64 reference)
  const m = Math.max(...allowed.map((i) => a[i]!));
  const z = allowed.reduce((s, i) => s + Math.exp(a[i]! - m), 0);
  const lp = (i: number) => a[i]! - m - Math.log(z);
  t.true(allowed.includes(out.tokens[0]!));
  t.true(Math.abs(out.logprobs[0]! - lp(out.tokens[0]!)) < 1e-4);
  const best = [...allowed].sort((x, y) => a[y]! - a[x]! || x - y).slice(0, 3);
  t.deepEqual(Array.from(out.topIds.slice(0, 3)), best);
  for (let k = 0; k < 3; k++) t.true(Math.abs(out.topLogprobs[k]! - lp(best[k]!)) < 1e-4);
  // the unmasked row gives exactly what it gives alone
  const alone = native.sampleLogits(b, V, packSampling([{ params, seed: 6, outputIndex: 0 }]));
  t.is(out.tokens[1], alone.tokens[0]);
  t.is(out.logprobs[1], alone.logprobs[0]);
  t.deepEqual(Array.from(out.topIds.slice(3, 6)), Array.from(alone.topIds));
});

test('the lm head applies the mask: masked rows choose allowed tokens, alone or beside unmasked rows, with identical results', async (t) => {
  const model = LlamaModel.load(generatedModel('tiny', 7), { dtype: 'float32', blockSize: 16, numBlocks: 64, threads: 1 });
  try {
    const V = model.config.vocabSize;
    const allowed = [100, 2000, 50000, 128000];
    const mask = maskOf(V, allowed);
    const prompt = [128000, 9906, 1917, 11];
    const run = (seqs: SequenceStep[]) => model.step(seqs);
    const pages = new PageAllocator(64);
    const table = () => pages.ensure([], 16, 16);
    const tableA = table();
    const masked = (params: SamplingParams, table: number[]): SequenceStep => ({ tokens: prompt, cachedTokens: 0, blockTable: table, sample: { params, seed: 3, outputIndex: 0, mask } });
    const plain = (table: number[]): SequenceStep => ({ tokens: [128000, 40, 1097], cachedTokens: 0, blockTable: table, sample: { params: { temperature: 1, topP: 0.9 }, seed: 9, outputIndex: 0 } });
    for (const params of [{ temperature: 0, logprobs: 2 }, { temperature: 1, logprobs: 2 }, { temperature: 0.7, topP: 0.9, logprobs: 2 }]) {
      const [alone] = await run([masked(params, tableA)]);
      t.true(allowed.includes(alone!.token!), `token ${alone!.token} is allowed`);
      const batch = await run([plain(table()), masked(params, tableA), plain(table())]);
      t.is(batch[1]!.token, alone!.token);
      t.is(batch[1]!.logprob, alone!.logprob);
      t.deepEqual(batch[1]!.top, alone!.top);
      t.true(alone!.top!.every((e) => allowed.includes(e.id)));
    }
  } finally {
    await model.close();
  }
});
