// Model benchmark: decode and prefill tokens/s of the `llama-3.2-1b` preset in
// bfloat16, beside this machine's limits measured in the same run (DESIGN.md, "Performance targets
// and how they are measured"):
//   bandwidth   read-only sum over >= 2 GiB, 8 interleaved streams per thread, all compute threads
//   peak        register-only loop of the ISA's GEMM instruction on all compute threads
//               (bench/limits.ts: fp32 FMA on avx2 / avx512, vdpbf16ps on avx512bf16, AMX tiles on amx)
//   decode limit    = bandwidth / bytes of every weight matrix read per token (lm head once)
//   prefill limit   = peak / (2 x matmul parameters per token; lm head for the last token only)
//   8-seq limit     = min(8 x decode limit, peak / (2 x matmul parameters per token))
// Bandwidth and peak on these shared VMs drift between runs, so both are measured before and after the model runs
// and the larger of each is the limit; all are printed and recorded. Each figure's samples
// are repeated while other processes use the cores (bench/quiet.ts: foreign CPU load above
// 5%), and the load of the kept samples is recorded. The model is generated (seeded) into
// ~/.cache/troupe/models when absent.
//
//   npm run bench:model [-- --decode-steps 32 --prefill-len 512 --runs 3 --block-size 32 --context 32]
import { existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel } from '../models/generator.js';
import { LlamaModel } from '../models/llama.js';
import { DEFAULT_BLOCK_SIZE } from '../models/options.js';
import { PageAllocator } from '../models/pages.js';
import { loadNative } from '../native/index.js';
import { Limits } from './limits.js';
import { quietSample } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    'decode-steps': { type: 'string', default: '32' },
    'prefill-len': { type: 'string', default: '512' },
    runs: { type: 'string', default: '3' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: String(availableParallelism()) },
    'block-size': { type: 'string' },
    context: { type: 'string', default: '32' },
    dir: { type: 'string' },
  },
});
const DECODE_STEPS = Number(args['decode-steps']);
const PREFILL_LEN = Number(args['prefill-len']);
const RUNS = Number(args.runs);
const BATCH = Number(args.batch);
const THREADS = Number(args.threads);
const BLOCK_SIZE = args['block-size'] === undefined ? DEFAULT_BLOCK_SIZE : Number(args['block-size']);
const CONTEXT = Number(args.context); // prompt tokens cached before the decode steps
const PRESET = 'llama-3.2-1b';
const SEED = 1;

const dir = args.dir ?? join(homedir(), '.cache', 'troupe', 'models', `${PRESET}-seed${SEED}-bf16`);
if (!existsSync(join(dir, 'config.json'))) {
  console.log(`generating ${PRESET} into ${dir} ...`);
  const t0 = performance.now();
  generateModel({ preset: PRESET, seed: SEED, out: dir, dtype: 'bf16' });
  console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// Machine limits, measured first (nothing else running).
const probe = new Limits(loadNative().selectedIsa(), THREADS);
probe.before();

const loadStart = performance.now();
const model = LlamaModel.load(dir, {
  dtype: 'bfloat16', threads: THREADS, blockSize: BLOCK_SIZE, maxModelLen: Math.max(4096, CONTEXT + 1024),
  numBlocks: Math.ceil(((BATCH + 1) * (CONTEXT + 64) + PREFILL_LEN) / BLOCK_SIZE) + 16, maxNumBatchedTokens: Math.max(PREFILL_LEN, CONTEXT),
});
const loadSeconds = (performance.now() - loadStart) / 1000;
const c = model.config;
const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
const layerParams = (c.numHeads + 2 * c.numKvHeads) * D * H + H * c.numHeads * D + 2 * I * H + H * I;
const matmulParams = c.numLayers * layerParams; // per token, without the lm head
const decodeBytes = 2 * (matmulParams + V * H); // bf16, lm head once
console.log(`model ${PRESET} bf16: ${(model.residentWeightBytes / 1e9).toFixed(2)} GB resident, loaded in ${loadSeconds.toFixed(1)} s; ${(decodeBytes / 1e9).toFixed(2)} GB of matrices read per decode step`);

const pages = new PageAllocator(model.kvCache.numBlocks);
const bs = model.kvCache.blockSize;
let tokenSeed = 12345;
const randomPrompt = (n: number): number[] =>
  Array.from({ length: n }, () => (tokenSeed = (Math.imul(tokenSeed, 1103515245) + 12345) >>> 0) % 128000);
const greedy = (outputIndex: number) => ({ params: { temperature: 0 }, seed: 0, outputIndex });

/** Seconds per decode step for `seqs` sequences, each prefilled with a CONTEXT-token prompt. */
async function decode(seqs: number, steps: number): Promise<{ perStep: number[]; weightBytesPerStep: number }> {
  const states = Array.from({ length: seqs }, () => ({ table: [] as number[], cached: 0, next: 0 }));
  for (const s of states) {
    const prompt = randomPrompt(CONTEXT);
    pages.ensure(s.table, CONTEXT, bs);
    const [r] = await model.step([{ tokens: prompt, cachedTokens: 0, blockTable: s.table, sample: greedy(0) }]);
    s.cached = CONTEXT;
    s.next = r!.token!;
  }
  const perStep: number[] = [];
  const before = model.stats().weightBytesRead;
  for (let k = 0; k < steps; k++) {
    for (const s of states) pages.ensure(s.table, s.cached + 1, bs);
    const t0 = performance.now();
    const out = await model.step(states.map((s) => ({ tokens: [s.next], cachedTokens: s.cached, blockTable: s.table, sample: greedy(k + 1) })));
    perStep.push((performance.now() - t0) / 1000);
    states.forEach((s, i) => ((s.cached += 1), (s.next = out[i]!.token!)));
  }
  const weightBytesPerStep = (model.stats().weightBytesRead - before) / steps;
  for (const s of states) pages.release(s.table);
  return { perStep, weightBytesPerStep };
}

async function prefill(len: number): Promise<number> {
  const table = pages.ensure([], len, bs);
  const t0 = performance.now();
  await model.step([{ tokens: randomPrompt(len), cachedTokens: 0, blockTable: table, sample: greedy(0) }]);
  const seconds = (performance.now() - t0) / 1000;
  pages.release(table);
  return seconds;
}

await decode(1, 2); // warm up (page faults, thread start)

const singleQ = await quietSample(() => decode(1, DECODE_STEPS));
const single = singleQ.value;
const decodeTps = 1 / median(single.perStep);

const prefillTimes: number[] = [];
const prefillLoads: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const q = await quietSample(() => prefill(PREFILL_LEN));
  prefillTimes.push(q.value);
  prefillLoads.push(q.foreign);
}
const prefillTps = PREFILL_LEN / median(prefillTimes);
const prefillFlopsPerToken = 2 * matmulParams + (2 * V * H) / PREFILL_LEN;

const batchedQ = await quietSample(() => decode(BATCH, Math.max(8, DECODE_STEPS / 2)));
const batched = batchedQ.value;
const batchTps = BATCH / median(batched.perStep);
const stats = model.stats();
console.log(`foreign CPU load of the kept samples: decode ${(100 * singleQ.foreign).toFixed(1)}%, prefill ${prefillLoads.map((l) => (100 * l).toFixed(1) + '%').join(' ')}, ${BATCH} seqs ${(100 * batchedQ.foreign).toFixed(1)}%`);

await model.close();
const limits = probe.after();
const bandwidth = limits.readBandwidthBytesPerS;
const peak = { flops: limits.peakFlops };
const decodeLimit = bandwidth / decodeBytes;
const prefillLimit = peak.flops / prefillFlopsPerToken;
const batchLimit = Math.min(BATCH * decodeLimit, peak.flops / (2 * (matmulParams + V * H)));

const rows = [
  ['bf16 decode, 1 sequence', decodeTps, decodeLimit, 'bandwidth / weight bytes per token'],
  [`bf16 prefill, ${PREFILL_LEN}-token prompt`, prefillTps, prefillLimit, `${limits.peakKind} peak / (2 x matmul params)`],
  [`bf16 decode, ${BATCH} sequences, aggregate`, batchTps, batchLimit, `min(${BATCH} x decode limit, peak)`],
] as const;
console.log(`\n${'figure'.padEnd(40)} ${'tok/s'.padStart(8)} ${'limit'.padStart(8)} ${'ratio'.padStart(7)}   limit is`);
for (const [name, v, lim, what] of rows) console.log(`${name.padEnd(40)} ${v.toFixed(1).padStart(8)} ${lim.toFixed(1).padStart(8)} ${((100 * v) / lim).toFixed(1).padStart(6)}%   ${what}`);
console.log(`weights streamed per decode step: 1 sequence ${(single.weightBytesPerStep / 1e9).toFixed(3)} GB, ${BATCH} sequences ${(batched.weightBytesPerStep / 1e9).toFixed(3)} GB (read once per step)`);

const file = writeRecord('model', {
  model: { preset: PRESET, dtype: 'bfloat16', seed: SEED, residentWeightBytes: model.residentWeightBytes, decodeBytesPerToken: decodeBytes, matmulParamsPerToken: matmulParams, loadSeconds },
  threads: THREADS,
  blockSize: BLOCK_SIZE,
  contextTokens: CONTEXT,
  isa: loadNative().selectedIsa(),
  scratch: { peakBytes: stats.peakScratchBytes, capacityBytes: stats.scratchCapacityBytes, growths: stats.scratchGrowths },
  pool: { jobs: stats.poolJobs, sleeps: stats.poolSleeps },
  foreignLoad: { decode1: singleQ.foreign, prefill: prefillLoads, decodeBatch: batchedQ.foreign },
  limits,
  decode1: { tokPerS: decodeTps, limitTokPerS: decodeLimit, ratio: decodeTps / decodeLimit, steps: DECODE_STEPS, medianStepS: median(single.perStep) },
  prefill: { promptLen: PREFILL_LEN, tokPerS: prefillTps, limitTokPerS: prefillLimit, ratio: prefillTps / prefillLimit, runs: prefillTimes },
  decodeBatch: { sequences: BATCH, tokPerS: batchTps, limitTokPerS: batchLimit, ratio: batchTps / batchLimit, medianStepS: median(batched.perStep), weightBytesPerStep: batched.weightBytesPerStep },
});
console.log(`record: ${file}`);
