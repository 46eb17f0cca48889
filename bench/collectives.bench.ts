// Shared-memory collectives benchmark: all-reduce latency (median per call)
// between 2 ranks at 8 KB, 64 KB and 1 MB, on worker threads and on child
// processes, and what it implies per token: 2 all-reduces per layer (after
// the attention output projection and after the MLP down projection) for a
// 16-layer model at hidden size 2048 fp32 = 8 KB per token.
//
// Measured in the same run:
//   - the machine's floor for the data movement: a plain memcpy of the same
//     bytes in one thread (TypedArray.set), and a single-thread sum of two
//     vectors (JS loop); ratios are printed against the memcpy;
//   - the peer: a plain JS all-reduce over a SharedArrayBuffer with
//     Atomics.wait/notify between 2 worker threads (what thread placement
//     would do without the addon), same protocol, spin policy and
//     summation order;
//   - the native all-reduce with spinning off (spinMicros 0: every wait
//     sleeps on the futex), to show what the short spin buys.
//
//   npm run bench:collectives      (node dist-test/bench/collectives.bench.js)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CollectiveGroup, DEFAULT_SPIN_MICROS } from '../native/collectives.js';
import type { BenchCase, BenchJob } from './fixtures/collective-bench-rank.js';
import { median, writeRecord } from './record.js';

const RANKS = 2;
const LAYERS = 16;
const ALL_REDUCES_PER_LAYER = 2;
const HIDDEN = 2048; // fp32: 8 KB per token
const DECODE_TARGET_TOK_S = 20; // DESIGN.md, bf16 decode of the llama-3.2-1b preset

const CASES: BenchCase[] = [
  { label: '8KB', floats: (8 << 10) / 4, warmup: 500, iterations: 5000 },
  { label: '64KB', floats: (64 << 10) / 4, warmup: 200, iterations: 2000 },
  { label: '1MB', floats: (1 << 20) / 4, warmup: 20, iterations: 300 },
];
const RANK_SCRIPT = new URL('./fixtures/collective-bench-rank.js', import.meta.url);

type Results = { label: string; ns: number[] }[];
type Placement = 'thread' | 'process';

function runRank(placement: Placement, job: BenchJob): Promise<Results> {
  return new Promise((resolve, reject) => {
    if (placement === 'thread') {
      const w = new Worker(RANK_SCRIPT, { workerData: job });
      w.once('message', (m: { results: Results }) => resolve(m.results));
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`bench rank ${job.rank} (thread) exited with code ${code}`)));
    } else {
      const c = fork(fileURLToPath(RANK_SCRIPT), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      c.once('message', (m: unknown) => resolve((m as { results: Results }).results));
      c.once('error', reject);
      // The result can still be in the pipe when 'exit' fires; a rank that died never sends it.
      c.once('exit', (code, signal) => {
        const fail = () => reject(new Error(`bench rank ${job.rank} (process) exited: code ${code}, signal ${signal}`));
        if (c.connected) c.once('disconnect', fail);
        else fail();
      });
      c.send({ job });
    }
  });
}

interface CaseFigures {
  /** Median µs per call on rank 0. */
  us: number;
  /** Median µs per call on rank 1. */
  rank1Us: number;
  /** Mean µs per call on rank 0 (includes the rare long waits a median hides). */
  meanUs: number;
}

/** Per-call all-reduce figures for each case. */
async function allReduceFigures(placement: Placement, impl: BenchJob['impl'], spinMicros?: number): Promise<Record<string, CaseFigures>> {
  const capacityBytes = Math.max(...CASES.map((c) => c.floats * 4));
  let group: CollectiveGroup | undefined;
  let sab: BenchJob['sab'];
  if (impl === 'native') group = CollectiveGroup.create({ ranks: RANKS, capacityBytes, broadcastCapacityBytes: 64 });
  else {
    const capacityFloats = capacityBytes / 4;
    sab = { control: new SharedArrayBuffer(4 * RANKS), slots: new SharedArrayBuffer(2 * RANKS * capacityBytes), capacityFloats };
  }
  try {
    const jobs: BenchJob[] = Array.from({ length: RANKS }, (_, rank) => ({
      impl, rank, ranks: RANKS, cases: CASES, descriptor: group?.descriptor, spinMicros, sab,
    }));
    const [r0, r1] = await Promise.all(jobs.map((j) => runRank(placement, j)));
    const out: Record<string, CaseFigures> = {};
    for (const c of CASES) {
      const ns0 = r0!.find((r) => r.label === c.label)!.ns;
      const ns1 = r1!.find((r) => r.label === c.label)!.ns;
      out[c.label] = {
        us: median(ns0) / 1000,
        rank1Us: median(ns1) / 1000,
        meanUs: ns0.reduce((a, b) => a + b, 0) / ns0.length / 1000,
      };
    }
    return out;
  } finally {
    group?.close();
  }
}

/** Median µs of fn over `iterations` timed calls (each timed alone). */
function timeEach(fn: () => void, warmup: number, iterations: number): number {
  for (let i = 0; i < warmup; i++) fn();
  const ns: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ns.push(Number(process.hrtime.bigint() - t0));
  }
  return median(ns) / 1000;
}

function baselines(): Record<string, { memcpyUs: number; sumUs: number }> {
  const out: Record<string, { memcpyUs: number; sumUs: number }> = {};
  for (const c of CASES) {
    const a = new Float32Array(c.floats).fill(1);
    const b = new Float32Array(c.floats).fill(2);
    const dst = new Float32Array(c.floats);
    const memcpyUs = timeEach(() => dst.set(a), c.warmup, c.iterations);
    const sumUs = timeEach(() => {
      for (let i = 0; i < c.floats; i++) dst[i] = a[i]! + b[i]!;
    }, c.warmup, c.iterations);
    out[c.label] = { memcpyUs, sumUs };
  }
  return out;
}

const fmt = (us: number) => (us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0));

const base = baselines();
const runs = {
  nativeThreads: { what: `native, threads (spin ${DEFAULT_SPIN_MICROS} µs)`, figures: await allReduceFigures('thread', 'native') },
  nativeProcesses: { what: `native, processes (spin ${DEFAULT_SPIN_MICROS} µs)`, figures: await allReduceFigures('process', 'native') },
  nativeThreadsNoSpin: { what: 'native, threads, no spin', figures: await allReduceFigures('thread', 'native', 0) },
  nativeProcessesNoSpin: { what: 'native, processes, no spin', figures: await allReduceFigures('process', 'native', 0) },
  nativeThreadsSpin50: { what: 'native, threads, spin 50 µs', figures: await allReduceFigures('thread', 'native', 50) },
  nativeProcessesSpin50: { what: 'native, processes, spin 50 µs', figures: await allReduceFigures('process', 'native', 50) },
  jsSabThreads: { what: `peer: JS SAB+Atomics, thr (${DEFAULT_SPIN_MICROS} µs)`, figures: await allReduceFigures('thread', 'js-sab') },
};

const col = (v: string) => v.padStart(16);
console.log(`all-reduce between ${RANKS} ranks: median µs per call on rank 0 (mean in brackets)`);
console.log(`${''.padEnd(34)}${CASES.map((c) => col(c.label)).join('')}`);
console.log(`${'baseline: memcpy, 1 thread'.padEnd(34)}${CASES.map((c) => col(fmt(base[c.label]!.memcpyUs))).join('')}`);
console.log(`${'baseline: JS sum of 2, 1 thread'.padEnd(34)}${CASES.map((c) => col(fmt(base[c.label]!.sumUs))).join('')}`);
for (const run of Object.values(runs)) {
  console.log(`${run.what.padEnd(34)}${CASES.map((c) => col(`${fmt(run.figures[c.label]!.us)} (${fmt(run.figures[c.label]!.meanUs)})`)).join('')}`);
}
const ratios = (what: string, f: (label: string) => number) => console.log(`${what.padEnd(34)}${CASES.map((c) => col(`${f(c.label).toFixed(2)}x`)).join('')}`);
ratios('ratio native threads / memcpy', (l) => runs.nativeThreads.figures[l]!.us / base[l]!.memcpyUs);
ratios('ratio native processes / memcpy', (l) => runs.nativeProcesses.figures[l]!.us / base[l]!.memcpyUs);
ratios('ratio native threads / JS peer', (l) => runs.nativeThreads.figures[l]!.us / runs.jsSabThreads.figures[l]!.us);

const sizes: Record<string, unknown> = {};
for (const c of CASES) {
  const row: Record<string, number> = { bytes: c.floats * 4, memcpyUs: base[c.label]!.memcpyUs, singleThreadJsSumUs: base[c.label]!.sumUs };
  for (const [key, run] of Object.entries(runs)) {
    const f = run.figures[c.label]!;
    row[`${key}Us`] = f.us;
    row[`${key}Rank1Us`] = f.rank1Us;
    row[`${key}MeanUs`] = f.meanUs;
  }
  row.nativeThreadsOverMemcpy = runs.nativeThreads.figures[c.label]!.us / base[c.label]!.memcpyUs;
  row.nativeProcessesOverMemcpy = runs.nativeProcesses.figures[c.label]!.us / base[c.label]!.memcpyUs;
  row.nativeThreadsOverJsPeer = runs.nativeThreads.figures[c.label]!.us / runs.jsSabThreads.figures[c.label]!.us;
  sizes[c.label] = row;
}

const perToken = (us: number) => LAYERS * ALL_REDUCES_PER_LAYER * us;
const stepUs = 1e6 / DECODE_TARGET_TOK_S;
const implied = {
  layers: LAYERS,
  allReducesPerLayer: ALL_REDUCES_PER_LAYER,
  hidden: HIDDEN,
  bytesPerAllReduce: HIDDEN * 4,
  threadsUsPerToken: perToken(runs.nativeThreads.figures['8KB']!.us),
  processesUsPerToken: perToken(runs.nativeProcesses.figures['8KB']!.us),
  threadsUsPerTokenFromMean: perToken(runs.nativeThreads.figures['8KB']!.meanUs),
  processesUsPerTokenFromMean: perToken(runs.nativeProcesses.figures['8KB']!.meanUs),
  jsPeerThreadsUsPerToken: perToken(runs.jsSabThreads.figures['8KB']!.us),
  decodeStepUsAtTarget: stepUs,
};
console.log(
  `\nper token (batch 1): ${LAYERS} layers × ${ALL_REDUCES_PER_LAYER} all-reduces of ${HIDDEN} fp32 (8 KB), from the medians: ` +
    `threads ${fmt(implied.threadsUsPerToken)} µs, processes ${fmt(implied.processesUsPerToken)} µs ` +
    `(from the means: ${fmt(implied.threadsUsPerTokenFromMean)} / ${fmt(implied.processesUsPerTokenFromMean)} µs; JS peer ${fmt(implied.jsPeerThreadsUsPerToken)} µs); ` +
    `${((100 * implied.threadsUsPerToken) / stepUs).toFixed(2)}% / ${((100 * implied.processesUsPerToken) / stepUs).toFixed(2)}% ` +
    `of a ${fmt(stepUs)} µs decode step at ${DECODE_TARGET_TOK_S} tok/s`,
);
const file = writeRecord('collectives', { ranks: RANKS, defaultSpinMicros: DEFAULT_SPIN_MICROS, sizes, perToken: implied });
console.log(`record: ${file}`);
