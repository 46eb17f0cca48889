// Tensor and pipeline parallelism on this machine: decode tokens/s (1 and 8
// sequences) and offline serving throughput of the same model as one rank
// with every core (tp1), two tensor ranks with one core each (tp2) and two
// pipeline stages with one core each (pp2), ranks in worker threads.
//
//   npm run bench:parallel -- [--model DIR] [--layouts tp1,tp2,pp2] [--rounds 2] [--prompts 16] [--input-len 128] [--output-len 32]
//
// What to expect with 2 cores: batch-1 decode is bound by weight bytes read
// per token / memory bandwidth. tp2 reads the same bytes in total (half per
// rank, one thread each), so at best it matches tp1, minus ~2 all-reduces per
// layer that each wait for the slower rank. pp2 at one sequence runs one stage
// at a time on one core: about half of tp1's bandwidth. With several
// sequences pp2 keeps two batches in flight, so both stages (cores) work.
// The record states the read bandwidth measured just before each layout and
// the decode limit it implies (the machine is shared: rounds interleave the
// layouts and the figures are medians over rounds).
import { loadNative } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { Checkpoint } from '../models/checkpoint.js';
import type { TroupeOptions } from '../actors/engine/troupe.js';
import { benchDecodeConcurrency, benchThroughput } from './throughput.js';
import { median, writeRecord } from './record.js';
import { homedir } from 'node:os';
import { join } from 'node:path';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const model = arg('model', join(homedir(), '.cache/troupe/models/llama-3.2-1b-seed1-bf16'));
const layouts = arg('layouts', 'tp1,tp2,pp2').split(',');
const prompts = Number(arg('prompts', '16'));
const inputLen = Number(arg('input-len', '128'));
const outputLen = Number(arg('output-len', '32'));
const cores = 2;

const LAYOUTS: Record<string, Partial<TroupeOptions>> = {
  tp1: { threads: cores },
  tp2: { parallel: { tensorParallelSize: 2, placement: 'thread' } },
  pp2: { parallel: { pipelineParallelSize: 2, placement: 'thread' } },
  'tp2-process': { parallel: { tensorParallelSize: 2, placement: 'process' } },
  'pp2-process': { parallel: { pipelineParallelSize: 2, placement: 'process' } },
};

const rounds = Number(arg('rounds', '2'));
const native = loadNative();
const ckpt = Checkpoint.open(model);
const c = ckpt.config;
// bytes of weight matrices read per decoded token (lm head once; the embedding lookup is no matmul)
const perLayer = c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
const weightBytes = 2 * (c.numLayers * perLayer + c.vocabSize * c.hiddenSize);
console.log(`model ${model}: ${(weightBytes / 1e9).toFixed(2)} GB of weights read per token`);

// This machine is shared: the layouts run in interleaved rounds (tp1, tp2, pp2, tp1, ...), each
// with the read bandwidth measured just before it, and each figure is the median over rounds.
interface Run { bandwidth: number; limit: number; decode1: number; decode8: number; serving: Awaited<ReturnType<typeof benchThroughput>> }
const runs: Record<string, Run[]> = Object.fromEntries(layouts.map((n) => [n, []]));
const base: TroupeOptions = { model, kvCacheMemory: '512MiB', maxModelLen: 512, maxNumBatchedTokens: 256, log: () => {} };
for (let round = 0; round < rounds; round++) {
  for (const name of layouts) {
    const layout = LAYOUTS[name];
    if (!layout) throw new Error(`--layouts: unknown layout ${name} (known: ${Object.keys(LAYOUTS).join(', ')})`);
    const engine = { ...base, ...layout };
    const bandwidth = loadProbes().measureReadBandwidth(2 * 2 ** 30, cores, 3);
    const limit = bandwidth / weightBytes;
    console.log(`\nround ${round + 1}, ${name}: read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (${cores} threads) -> decode limit ${limit.toFixed(1)} tok/s`);
    const decode = await benchDecodeConcurrency(engine, [1, 8], 16, 3);
    const serving = await benchThroughput({ engine, inputLen, outputLen, numPrompts: prompts, progress: false });
    console.log(`serving ${prompts} x (${inputLen} in, ${outputLen} out): ${serving.totalTokensPerSecond.toFixed(1)} tok/s total, ${serving.outputTokensPerSecond.toFixed(1)} output tok/s, ${serving.seconds.toFixed(1)} s`);
    runs[name]!.push({ bandwidth, limit, decode1: decode['1']!.tokensPerSecond, decode8: decode['8']!.tokensPerSecond, serving });
  }
}

const results = Object.fromEntries(Object.entries(runs).map(([name, rs]) => [name, {
  decode1: median(rs.map((r) => r.decode1)),
  decode1OfLimit: median(rs.map((r) => r.decode1 / r.limit)),
  decode8: median(rs.map((r) => r.decode8)),
  servingTotalTokensPerSecond: median(rs.map((r) => r.serving.totalTokensPerSecond)),
  servingOutputTokensPerSecond: median(rs.map((r) => r.serving.outputTokensPerSecond)),
  runs: rs,
}]));
const tp1 = results['tp1'];
console.log('\nmedians over rounds:');
for (const [name, r] of Object.entries(results)) {
  const x = (v: number, b: number | undefined) => (b ? ` (${(v / b).toFixed(2)}x tp1)` : '');
  console.log(`${name.padEnd(12)} decode x1 ${r.decode1.toFixed(1).padStart(6)} tok/s${x(r.decode1, tp1?.decode1)}, ${(100 * r.decode1OfLimit).toFixed(0)}% of the limit` +
    ` | decode x8 ${r.decode8.toFixed(1).padStart(6)}${x(r.decode8, tp1?.decode8)} | serving ${r.servingTotalTokensPerSecond.toFixed(1).padStart(6)} tok/s${x(r.servingTotalTokensPerSecond, tp1?.servingTotalTokensPerSecond)}`);
}
console.log(`record: ${writeRecord('parallel', { model, weightBytes, rounds, prompts, inputLen, outputLen, results })}`);
