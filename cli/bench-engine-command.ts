// `troupe bench throughput` and `troupe bench decode`: offline engine
// benchmarks over a model directory (bench/throughput.ts does the work).
import { benchDecodeConcurrency, benchThroughput, recordThroughput } from '../bench/throughput.js';
import type { TroupeOptions } from '../actors/engine/troupe.js';

export interface EngineFlags {
  model: string;
  dtype?: string;
  maxModelLen?: string;
  maxNumSeqs?: string;
  maxNumBatchedTokens?: string;
  kvCacheMemory?: string;
  threads?: string;
}

function engineOptions(flags: EngineFlags): TroupeOptions {
  const int = (v: string | undefined) => (v === undefined ? undefined : Number.parseInt(v, 10));
  const options: TroupeOptions = { model: flags.model, log: (line) => console.log(line) };
  if (flags.dtype) options.dtype = flags.dtype;
  if (flags.maxModelLen) options.maxModelLen = int(flags.maxModelLen)!;
  if (flags.maxNumSeqs) options.maxNumSeqs = int(flags.maxNumSeqs)!;
  if (flags.maxNumBatchedTokens) options.maxNumBatchedTokens = int(flags.maxNumBatchedTokens)!;
  if (flags.kvCacheMemory) options.kvCacheMemory = flags.kvCacheMemory;
  if (flags.threads) options.threads = int(flags.threads)!;
  return options;
}

export async function runThroughput(flags: EngineFlags & { inputLen: string; outputLen: string; numPrompts: string }): Promise<void> {
  const figures = await benchThroughput({
    engine: engineOptions(flags),
    inputLen: Number(flags.inputLen), outputLen: Number(flags.outputLen), numPrompts: Number(flags.numPrompts),
  });
  console.log(`Throughput: ${figures.requestsPerSecond.toFixed(3)} requests/s, ${figures.totalTokensPerSecond.toFixed(1)} total tokens/s ` +
    `(input ${figures.inputTokensPerSecond.toFixed(1)}, output ${figures.outputTokensPerSecond.toFixed(1)} tokens/s)`);
  console.log(`prefix cache hit rate ${(figures.prefixCacheHitRate * 100).toFixed(2)}% (unique prompts), preemptions ${figures.preemptions}`);
  console.log(`record: ${recordThroughput('throughput', { model: flags.model, ...figures })}`);
}

export async function runDecodeSweep(flags: EngineFlags & { concurrency: string; outputLen: string }): Promise<void> {
  const levels = flags.concurrency.split(',').map((c) => Number.parseInt(c, 10));
  if (levels.some((c) => !(c > 0))) throw new Error(`--concurrency wants a list of positive integers, e.g. 1,8,32; got "${flags.concurrency}"`);
  const figures = await benchDecodeConcurrency(engineOptions(flags), levels, Number(flags.outputLen));
  console.log(`record: ${recordThroughput('decode-concurrency', { model: flags.model, outputLen: Number(flags.outputLen), figures })}`);
}
