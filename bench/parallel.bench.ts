// Tensor and pipeline parallelism on this machine: decode tokens/s (1 and 8
// sequences) and offline serving throughput of the same model as one rank
// with every core (tp1), two tensor ranks with one core each (tp2) and two
// pipeline stages with one core each (pp2), ranks in worker threads.
//
//   npm run bench:parallel -- [--model DIR] [--layouts tp1,tp2,pp2] [--prompts 16] [--input-len 128] [--output-len 32]
//
// What to expect with 2 cores: batch-1 decode is bound by weight bytes read
// per token / memory bandwidth. tp2 reads the same bytes in total (half per
// rank, one thread each), so at best it matches tp1, minus ~2 all-reduces per
// layer that each wait for the slower rank. pp2 at one sequence runs one stage
// at a time on one core: about half of tp1's bandwidth. With several
// sequences pp2 keeps two batches in flight, so both stages (cores) work.
// The record states the read bandwidth measured in the same run and the
// decode limit it implies.
import { loadNative } from '../native/index.js';
import { Checkpoint } from '../models/checkpoint.js';
import type { TroupeOptions } from '../actors/engine/troupe.js';
import { benchDecodeConcurrency, benchThroughput } from './throughput.js';
import { writeRecord } from './record.js';
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

const native = loadNative();
const ckpt = Checkpoint.open(model);
const c = ckpt.config;
// bytes of weight matrices read per decoded token (lm head once; the embedding lookup is no matmul)
const perLayer = c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
const weightBytes = 2 * (c.numLayers * perLayer + c.vocabSize * c.hiddenSize);
const bandwidth = native.model.measureReadBandwidth(2 * 2 ** 30, cores, 3);
const limit = bandwidth / weightBytes;
console.log(`model ${model}: ${(weightBytes / 1e9).toFixed(2)} GB of weights read per token; read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s (${cores} threads) -> decode limit ${limit.toFixed(1)} tok/s`);

const base: TroupeOptions = { model, kvCacheMemory: '512MiB', maxModelLen: 512, maxNumBatchedTokens: 256, log: () => {} };
const results: Record<string, unknown> = {};
for (const name of layouts) {
  const layout = LAYOUTS[name];
  if (!layout) throw new Error(`--layouts: unknown layout ${name} (known: ${Object.keys(LAYOUTS).join(', ')})`);
  const engine = { ...base, ...layout };
  console.log(`\n${name}:`);
  const decode = await benchDecodeConcurrency(engine, [1, 8], 16, 3);
  const serving = await benchThroughput({ engine, inputLen, outputLen, numPrompts: prompts, progress: false });
  console.log(`serving ${prompts} x (${inputLen} in, ${outputLen} out): ${serving.totalTokensPerSecond.toFixed(1)} tok/s total, ${serving.outputTokensPerSecond.toFixed(1)} output tok/s, ${serving.seconds.toFixed(1)} s`);
  results[name] = {
    decode1: decode['1']!.tokensPerSecond, decode1OfLimit: decode['1']!.tokensPerSecond / limit,
    decode8: decode['8']!.tokensPerSecond, decode, serving,
  };
}
const tp1 = results['tp1'] as { decode1: number; decode8: number; serving: { totalTokensPerSecond: number } } | undefined;
if (tp1) {
  for (const [name, r] of Object.entries(results) as [string, { decode1: number; decode8: number; serving: { totalTokensPerSecond: number } }][]) {
    console.log(`${name.padEnd(12)} decode x1 ${r.decode1.toFixed(1).padStart(6)} tok/s (${(r.decode1 / tp1.decode1).toFixed(2)}x tp1, ${(100 * r.decode1 / limit).toFixed(0)}% of limit)` +
      `  decode x8 ${r.decode8.toFixed(1).padStart(6)} (${(r.decode8 / tp1.decode8).toFixed(2)}x)  serving ${r.serving.totalTokensPerSecond.toFixed(1).padStart(6)} tok/s (${(r.serving.totalTokensPerSecond / tp1.serving.totalTokensPerSecond).toFixed(2)}x)`);
  }
}
console.log(`record: ${writeRecord('parallel', { model, weightBytes, bandwidth, decodeLimit: limit, prompts, inputLen, outputLen, results })}`);
