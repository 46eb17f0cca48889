// Sampling benchmark: the forward step's sampling phase (native/src/sampling/sampling.h,
// one row per task on the model's compute threads) over R rows of 128256
// logits, per parameter set, against the target of under 2 ms per step
// for 8 to 64 sequences. Also printed ("lse ms"): the lm head's per-tile
// epilogue for the sampled rows, the log-sum-exp and the tile summaries that
// sampling reads (for top-p the records of the tokens near the row's max); in
// the model it runs inside the lm head's tiles, while they are in cache, so
// its cost over greedy's is what the parameters add to the lm head. "records":
// rows whose top-p nucleus came from the records (the others scanned the row).
//
// Logits are seeded N(0, 3^2) draws: the generated models are calibrated so
// that a random prompt's logits have a standard deviation around 3 (DESIGN.md),
// which makes top-p nuclei thousands of tokens wide, harder than a trained
// model's peaked distributions. Samples taken while other processes used the
// cores are repeated (bench/quiet.ts).
//
//   npm run bench:sampling [-- --rows 8,64 --threads 2 --reps 7]
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { packSampling, type SampleRequest, type SamplingParams } from '../models/sampling.js';
import { loadNative } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { quietSample } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '8,64' },
    threads: { type: 'string', default: String(availableParallelism()) },
    reps: { type: 'string', default: '7' },
  },
});
const THREADS = Number(args.threads);
const REPS = Number(args.reps);
const V = 128256;
const TARGET_MS = 2;

const native = loadNative();
const isa = native.selectedIsa();

/** Seeded standard normal draws times `sigma` (Box-Muller over a 32-bit LCG). */
function gaussianLogits(n: number, seed: number, sigma: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())), a = 2 * Math.PI * next();
    out[i] = sigma * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = sigma * r * Math.sin(a);
  }
  return out;
}

const prompt = Array.from({ length: 512 }, (_, i) => (i * 7919) % V);
const SETS: { name: string; params: SamplingParams; extra?: Partial<SampleRequest> }[] = [
  { name: 'greedy', params: { temperature: 0 } },
  { name: 'greedy + 5 logprobs', params: { temperature: 0, logprobs: 5 } },
  { name: 'temperature 1', params: { temperature: 1 } },
  { name: 'temperature 0.8', params: { temperature: 0.8 } },
  { name: 'top-k 50, T 0.8', params: { temperature: 0.8, topK: 50 } },
  { name: 'top-p 0.9, T 0.8', params: { temperature: 0.8, topP: 0.9 } },
  // At T 1 the 0.9 nucleus of these rows holds ~5.5K tokens, and some rows' tile floors rise above its cut (scanned).
  { name: 'top-p 0.9, T 1', params: { temperature: 1, topP: 0.9 } },
  { name: 'top-k 50 + top-p 0.95', params: { temperature: 1, topK: 50, topP: 0.95 } },
  { name: 'min-p 0.05', params: { temperature: 1, minP: 0.05 } },
  { name: 'repetition 1.1 (512 seen), T 0.8', params: { temperature: 0.8, repetitionPenalty: 1.1 }, extra: { promptTokens: prompt } },
];

const rowsList = args.rows.split(',').map(Number);
const maxRows = Math.max(...rowsList);
const logits = gaussianLogits(maxRows * V, 1234, 3);
console.log(`sampling over ${V} logits (N(0, 3^2)), ${THREADS} threads, isa ${isa}, median of ${REPS}; target < ${TARGET_MS} ms per step\n`);
console.log(`${'parameters'.padEnd(34)} ${'rows'.padStart(5)} ${'sample ms'.padStart(10)} ${'per row us'.padStart(11)} ${'lse ms'.padStart(8)}  target  foreign  records`);

// records: rows whose top-p nucleus came from the lm head's tile records (no scan of the row).
const results: { set: string; rows: number; sampleMs: number; lseMs: number; nucleusFromRecords: number; meetsTarget: boolean; foreignLoad: number }[] = [];
for (const R of rowsList) {
  const rowLogits = logits.subarray(0, R * V);
  for (const set of SETS) {
    const reqs: SampleRequest[] = Array.from({ length: R }, (_, i) => ({ params: set.params, seed: 17 + i, outputIndex: 3, ...set.extra }));
    const packed = packSampling(reqs);
    const r = await quietSample(() => {
      const out = loadProbes().sampleBench(rowLogits, V, packed, { isa, threads: THREADS, reps: REPS });
      return { sampleMs: median(out.sampleMs), lseMs: median(out.lseMs), nucleusFromRecords: out.nucleusFromRecords };
    });
    const { sampleMs, lseMs, nucleusFromRecords } = r.value;
    results.push({ set: set.name, rows: R, sampleMs, lseMs, nucleusFromRecords, meetsTarget: sampleMs < TARGET_MS, foreignLoad: r.foreign });
    console.log(`${set.name.padEnd(34)} ${String(R).padStart(5)} ${sampleMs.toFixed(3).padStart(10)} ${((sampleMs * 1000) / R).toFixed(1).padStart(11)} ${lseMs.toFixed(3).padStart(8)}  ${sampleMs < TARGET_MS ? '  ok  ' : ' MISS '}  ${(100 * r.foreign).toFixed(0).padStart(4)}%  ${String(nucleusFromRecords).padStart(7)}`);
  }
}

const file = writeRecord('sampling', { vocab: V, threads: THREADS, isa, logits: 'N(0, 3^2), seeded', targetMs: TARGET_MS, results });
console.log(`\nrecord: ${file}`);
