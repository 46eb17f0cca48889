// FP8 benchmark: decode and prefill tokens/s of the `llama-3.2-1b` preset in
// bf16, FP8 `meta` and FP8 `all` (troupe quantize --fp8 of the bf16 model),
// loaded side by side and measured in interleaved rounds so the shared VM's
// drift hits all three alike; plus decode at a long context with the fp8 KV
// cache against the bf16 one. Limits measured in the same run (DESIGN.md):
//   decode limit  = read bandwidth / bytes of every weight matrix read per token
//                   (modelStats().linearWeightBytes: 1 byte per FP8 weight, lm head once)
//   prefill limit = peak of the ISA's GEMM instruction (bench/limits.ts) /
//                   (2 x matmul params per token; lm head for the last token only)
// The FP8 GEMM multiplies bf16 values (e4m3 widened in registers), so FP8
// prefill shares the bf16 peak; decode reads half the bytes.
//
//   npm run bench:fp8 [-- --decode-steps 16 --rounds 5 --prefill-len 512 --long-context 16384]
import { existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateModel } from '../models/generator.js';
import { LlamaModel } from '../models/llama.js';
import { PageAllocator } from '../models/pages.js';
import { quantizeCheckpoint } from '../models/quantization/quantize.js';
import { loadNative } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { Limits } from './limits.js';
import { quietSample } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    'decode-steps': { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    'prefill-len': { type: 'string', default: '512' },
    'prefill-runs': { type: 'string', default: '2' },
    'long-context': { type: 'string', default: '16384' },
    'long-steps': { type: 'string', default: '8' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const DECODE_STEPS = Number(args['decode-steps']);
const ROUNDS = Number(args.rounds);
const PREFILL_LEN = Number(args['prefill-len']);
const PREFILL_RUNS = Number(args['prefill-runs']);
const LONG = Number(args['long-context']);
const LONG_STEPS = Number(args['long-steps']);
const THREADS = Number(args.threads);
const PRESET = 'llama-3.2-1b';
const CONTEXT = 32;
const root = join(homedir(), '.cache', 'troupe', 'models');
const bf16Dir = join(root, `${PRESET}-seed1-bf16`);

function ensureModels(): Record<'bf16' | 'fp8-meta' | 'fp8-all', string> {
  if (!existsSync(join(bf16Dir, 'config.json'))) {
    console.log(`generating ${PRESET} into ${bf16Dir} ...`);
    generateModel({ preset: PRESET, seed: 1, out: bf16Dir, dtype: 'bf16' });
  }
  const dirs = { bf16: bf16Dir, 'fp8-meta': join(root, `${PRESET}-seed1-fp8-meta`), 'fp8-all': join(root, `${PRESET}-seed1-fp8-all`) };
  for (const scheme of ['meta', 'all'] as const) {
    const dir = dirs[`fp8-${scheme}`];
    if (existsSync(join(dir, 'config.json'))) continue;
    console.log(`troupe quantize --fp8 ${bf16Dir} ${dir} --scheme ${scheme} ...`);
    quantizeCheckpoint(bf16Dir, dir, scheme);
  }
  return dirs;
}

let tokenSeed = 4242;
const randomPrompt = (n: number): number[] => Array.from({ length: n }, () => (tokenSeed = (Math.imul(tokenSeed, 1103515245) + 12345) >>> 0) % 128000);
const greedy = (outputIndex: number) => ({ params: { temperature: 0 }, seed: 0, outputIndex });

/**
 * Seconds per decode step of one sequence after a `context`-token prompt: prefilled, or with
 * `filled` the cache pages were set to random values (the probes addon's modelFillKv) and the steps
 * attend to them as the context.
 */
async function decode(model: LlamaModel, context: number, steps: number, filled = false): Promise<number[]> {
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const table = pages.ensure([], context + steps + 1, model.kvCache.blockSize);
  let next = 0;
  if (!filled) {
    const [r] = await model.step([{ tokens: randomPrompt(context), cachedTokens: 0, blockTable: table, sample: greedy(0) }]);
    next = r!.token!;
  }
  const times: number[] = [];
  for (let k = 0; k < steps; k++) {
    const t0 = performance.now();
    const [r] = await model.step([{ tokens: [next], cachedTokens: context + k, blockTable: table, sample: greedy(k + 1) }]);
    times.push((performance.now() - t0) / 1000);
    next = r!.token!;
  }
  pages.release(table);
  return times;
}

async function prefill(model: LlamaModel, len: number): Promise<number> {
  const pages = new PageAllocator(model.kvCache.numBlocks);
  const table = pages.ensure([], len, model.kvCache.blockSize);
  const t0 = performance.now();
  await model.step([{ tokens: randomPrompt(len), cachedTokens: 0, blockTable: table, sample: greedy(0) }]);
  return (performance.now() - t0) / 1000;
}

/** Best of 10 calls of the activation quantizer on M x K values, ns per element: the portable loop and each ISA's. */
function quantizerTimes(M: number, K: number): Record<string, number> {
  const probes = loadProbes();
  const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 3);
  const xq = new Uint16Array(M * K), xs = new Float32Array(M);
  const times: Record<string, number> = {};
  for (const isa of [undefined, ...loadNative().availableIsas()]) {
    let best = Infinity;
    for (let r = 0; r < 10; r++) {
      const t0 = process.hrtime.bigint();
      probes.fp8QuantizeActivations({ x, xq, xs, M, K, ...(isa === undefined ? {} : { isa }) });
      best = Math.min(best, Number(process.hrtime.bigint() - t0));
    }
    times[isa ?? 'portable'] = best / (M * K);
  }
  return times;
}

const dirs = ensureModels();
const probe = new Limits(loadNative().selectedIsa(), THREADS);
probe.before();

const names = ['bf16', 'fp8-meta', 'fp8-all'] as const;
const blocks = Math.ceil((PREFILL_LEN + CONTEXT + DECODE_STEPS + 64) / 32) + 8;
const models = Object.fromEntries(
  names.map((n) => [n, LlamaModel.load(dirs[n], { threads: THREADS, numBlocks: blocks, maxModelLen: 4096, maxNumBatchedTokens: PREFILL_LEN })]),
) as Record<(typeof names)[number], LlamaModel>;
for (const n of names) {
  const s = models[n].stats();
  const fp8Linears = [...s.linearDtypes.qkv, ...s.linearDtypes.o, ...s.linearDtypes.gateUp, ...s.linearDtypes.down, s.linearDtypes.lmHead].filter((d) => d === 'fp8_e4m3').length;
  console.log(`${n.padEnd(9)} ${(models[n].residentWeightBytes / 1e9).toFixed(2)} GB resident, ${(s.linearWeightBytes / 1e9).toFixed(3)} GB of matrices per decode step, ${fp8Linears} FP8 linears${s.fp8Kernel ? ` (${s.fp8Kernel})` : ''}`);
}
for (const n of names) await decode(models[n], CONTEXT, 2); // warm up

// Interleaved rounds: each round runs every model's decode, so drift is shared.
const steps: Record<string, number[]> = { bf16: [], 'fp8-meta': [], 'fp8-all': [] };
const loads: Record<string, number[]> = { bf16: [], 'fp8-meta': [], 'fp8-all': [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const n of names) {
    const q = await quietSample(() => decode(models[n], CONTEXT, DECODE_STEPS));
    steps[n]!.push(...q.value);
    loads[n]!.push(q.foreign);
  }
}
const prefills: Record<string, number[]> = { bf16: [], 'fp8-meta': [], 'fp8-all': [] };
for (let r = 0; r < PREFILL_RUNS; r++) for (const n of names) prefills[n]!.push((await quietSample(() => prefill(models[n], PREFILL_LEN))).value);
const linearBytes = Object.fromEntries(names.map((n) => [n, models[n].stats().linearWeightBytes]));
const c = models.bf16.config;
const quantizer = quantizerTimes(PREFILL_LEN, c.hiddenSize);
for (const n of names) await models[n].close();

// Long context: bf16 weights, KV cache in bf16 and in fp8 (e4m3), decode after LONG tokens
// whose K / V are random values written into the pages (a 16K prefill takes minutes here).
const long: Record<string, { tokPerS: number; kvCacheBytes: number; steps: number[] }> = {};
if (LONG > 0) {
  for (const kv of ['auto', 'fp8'] as const) {
    const m = LlamaModel.load(dirs.bf16, { threads: THREADS, maxModelLen: LONG + 64, numBlocks: Math.ceil((LONG + LONG_STEPS + 8) / 32) + 2, maxNumBatchedTokens: 2048, kvCacheDtype: kv });
    await m.betweenSteps((handle) => loadProbes().modelFillKv(handle, 7, 2));
    const t = (await quietSample(() => decode(m, LONG, LONG_STEPS, true))).value;
    long[kv === 'auto' ? 'bf16' : 'fp8_e4m3'] = { tokPerS: 1 / median(t), kvCacheBytes: m.kvCache.bytes, steps: t };
    await m.close();
  }
}

const limits = probe.after();
const bandwidth = limits.readBandwidthBytesPerS;
const peak = limits.peakFlops;

const H = c.hiddenSize, D = c.headDim, I = c.intermediateSize, V = c.vocabSize;
const matmulParams = c.numLayers * ((c.numHeads + 2 * c.numKvHeads) * D * H + H * c.numHeads * D + 2 * I * H + H * I);
const prefillLimit = peak / (2 * matmulParams + (2 * V * H) / PREFILL_LEN);
const figures: Record<string, unknown> = {};
console.log(`\n${'figure'.padEnd(34)} ${'tok/s'.padStart(8)} ${'limit'.padStart(8)} ${'ratio'.padStart(7)} ${'vs bf16'.padStart(8)}`);
const decodeTps = Object.fromEntries(names.map((n) => [n, 1 / median(steps[n]!)]));
const prefillTps = Object.fromEntries(names.map((n) => [n, PREFILL_LEN / median(prefills[n]!)]));
for (const n of names) {
  const limit = bandwidth / linearBytes[n]!;
  console.log(`${`${n} decode, 1 sequence`.padEnd(34)} ${decodeTps[n]!.toFixed(1).padStart(8)} ${limit.toFixed(1).padStart(8)} ${((100 * decodeTps[n]!) / limit).toFixed(1).padStart(6)}% ${(decodeTps[n]! / decodeTps.bf16!).toFixed(2).padStart(7)}x`);
  figures[n] = {
    decode1: { tokPerS: decodeTps[n], limitTokPerS: limit, ratioToLimit: decodeTps[n]! / limit, ratioToBf16: decodeTps[n]! / decodeTps.bf16!, medianStepS: median(steps[n]!), foreignLoad: loads[n] },
    prefill: { promptLen: PREFILL_LEN, tokPerS: prefillTps[n], limitTokPerS: prefillLimit, ratioToLimit: prefillTps[n]! / prefillLimit, ratioToBf16: prefillTps[n]! / prefillTps.bf16!, runs: prefills[n] },
    linearWeightBytes: linearBytes[n],
  };
}
for (const n of names)
  console.log(`${`${n} prefill, ${PREFILL_LEN} tokens`.padEnd(34)} ${prefillTps[n]!.toFixed(1).padStart(8)} ${prefillLimit.toFixed(1).padStart(8)} ${((100 * prefillTps[n]!) / prefillLimit).toFixed(1).padStart(6)}% ${(prefillTps[n]! / prefillTps.bf16!).toFixed(2).padStart(7)}x`);
if (long.bf16 && long.fp8_e4m3) {
  for (const [kv, r] of Object.entries(long))
    console.log(`${`decode at ${LONG} ctx, ${kv} KV`.padEnd(34)} ${r.tokPerS.toFixed(1).padStart(8)} ${'-'.padStart(8)} ${'-'.padStart(7)} ${(r.tokPerS / long.bf16.tokPerS).toFixed(2).padStart(7)}x   KV ${(r.kvCacheBytes / 2 ** 20).toFixed(0)} MiB`);
  figures.longContext = { context: LONG, ...long };
}
const portableNs = quantizer.portable!;
console.log(`\nactivation quantizer, ${PREFILL_LEN} x ${c.hiddenSize} on one thread, ns per element: ${Object.entries(quantizer).map(([k, ns]) => `${k} ${ns.toFixed(2)}${k === 'portable' ? '' : ` (${(portableNs / ns).toFixed(1)}x)`}`).join(', ')}; the model uses ${loadNative().selectedIsa()}'s`);
figures.activationQuantizerNsPerElement = quantizer;
console.log(`\ntarget: fp8-all decode >= 1.6x bf16 (DESIGN.md); measured ${(decodeTps['fp8-all']! / decodeTps.bf16!).toFixed(2)}x`);
const file = writeRecord('fp8', {
  model: PRESET,
  threads: THREADS,
  isa: loadNative().selectedIsa(),
  limits,
  rounds: ROUNDS,
  decodeStepsPerRound: DECODE_STEPS,
  ...figures,
});
console.log(`record: ${file}`);
