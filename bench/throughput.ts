// Offline throughput benchmark, like vLLM's benchmark_throughput: N unique
// random prompts of --input-len tokens, each generating exactly --output-len
// tokens (ignore_eos), all submitted at once to an engine in this process.
// Prompts are random token ids, so the prefix cache cannot flatter the
// figures; the hit rate is printed to show it.
//
// A second mode measures aggregate decode tokens/s at fixed concurrencies:
// C sequences start together with short prompts; the rate is taken over the
// window in which all C are decoding (after the last first token, before the
// first finish).
import { SingleBar, Presets } from 'cli-progress';
import { Troupe, type TroupeOptions } from '../actors/engine/troupe.js';
import { median, writeRecord } from './record.js';

/** Seeded random token ids in [1000, vocab - 1000): plain words and pieces, no special tokens. */
function randomPrompt(length: number, seed: number, vocab = 128256): number[] {
  let state = (seed * 2654435761) >>> 0 || 1;
  return Array.from({ length }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return 1000 + ((state >>> 0) % (vocab - 2000));
  });
}

export interface ThroughputOptions {
  engine: TroupeOptions;
  inputLen: number;
  outputLen: number;
  numPrompts: number;
  progress?: boolean;
}

export async function benchThroughput(options: ThroughputOptions) {
  const llm = await Troupe.start(options.engine);
  try {
    const prompts = Array.from({ length: options.numPrompts }, (_, i) => randomPrompt(options.inputLen, i + 1));
    const bar = options.progress === false ? undefined : new SingleBar({ format: 'requests {bar} {value}/{total} | {duration}s' }, Presets.shades_classic);
    bar?.start(options.numPrompts, 0);
    const start = performance.now();
    let outputTokens = 0;
    await Promise.all(prompts.map(async (prompt) => {
      const [result] = await llm.generate([prompt], { temperature: 0, maxTokens: options.outputLen, ignoreEos: true });
      outputTokens += result!.outputs[0]!.tokenIds.length;
      bar?.increment();
    }));
    const seconds = (performance.now() - start) / 1000;
    bar?.stop();
    const usage = await llm.kvUsage();
    const inputTokens = options.numPrompts * options.inputLen;
    return {
      numPrompts: options.numPrompts, inputLen: options.inputLen, outputLen: options.outputLen, seconds,
      requestsPerSecond: options.numPrompts / seconds,
      inputTokensPerSecond: inputTokens / seconds,
      outputTokensPerSecond: outputTokens / seconds,
      totalTokensPerSecond: (inputTokens + outputTokens) / seconds,
      prefixCacheHitRate: usage.prefixQueries ? usage.prefixHits / usage.prefixQueries : 0,
      preemptions: usage.preemptions,
    };
  } finally {
    await llm.shutdown();
  }
}

export async function benchDecodeConcurrency(engine: TroupeOptions, concurrencies: number[], outputLen: number, repeats = 3) {
  const llm = await Troupe.start({ ...engine, maxNumSeqs: Math.max(...concurrencies, engine.maxNumSeqs ?? 0) });
  const figures: Record<string, { tokensPerSecond: number; runs: number[] }> = {};
  try {
    for (const c of concurrencies) {
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) runs.push(await decodeWindow(llm, c, outputLen, r));
      figures[String(c)] = { tokensPerSecond: median(runs), runs };
      console.log(`concurrency ${String(c).padStart(3)}: aggregate decode ${median(runs).toFixed(1)} tok/s (runs ${runs.map((x) => x.toFixed(1)).join(', ')})`);
    }
  } finally {
    await llm.shutdown();
  }
  return figures;
}

/** Tokens/s over the window in which all `c` sequences decode together. */
async function decodeWindow(llm: Troupe, c: number, outputLen: number, round: number): Promise<number> {
  const arrivals: number[][] = Array.from({ length: c }, () => []);
  await Promise.all(Array.from({ length: c }, (_, i) => new Promise<void>((resolve, reject) => {
    llm.stream(randomPrompt(16, 10_000 * (round + 1) + i), { temperature: 0, maxTokens: outputLen, ignoreEos: true }).subscribe({
      next: (d) => { for (let k = 0; k < d.tokenIds.length; k++) arrivals[i]!.push(performance.now()); },
      error: reject,
      complete: resolve,
    });
  })));
  const start = Math.max(...arrivals.map((a) => a[0]!));
  const end = Math.min(...arrivals.map((a) => a[a.length - 1]!));
  const tokens = arrivals.reduce((n, a) => n + a.filter((t) => t > start && t <= end).length, 0);
  return tokens / ((end - start) / 1000);
}

export function recordThroughput(name: string, figures: unknown): string {
  return writeRecord(name, figures);
}
