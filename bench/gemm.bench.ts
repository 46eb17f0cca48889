// GEMM benchmark: the model's GEMM driver (native/src/model/gemm_parallel.h over
// gemm_impl.h) on the llama-3.2-1b matrix shapes, bf16 weights, for M = 1, 8,
// 64 and 512 rows, beside this machine's limits measured in the same run
// (DESIGN.md, "Performance targets and how they are measured"):
//   bandwidth   read-only sum over >= 2 GiB, 8 interleaved streams per thread, all compute threads
//   peak        register-only loop of the ISA's GEMM instruction on all compute threads
//               (bench/limits.ts: fp32 FMA on avx2 / avx512, vdpbf16ps on avx512bf16, AMX tiles on amx)
// Each figure is printed as GFLOP/s (2 M N K / time) against the peak and as
// GB/s (weight bytes N K 2 / time) against the bandwidth. Small M streams a
// fresh copy of the matrix per call (>= 1 GiB of copies, as a decode step
// streams every layer from DRAM); the "step" rows weight the shapes as one
// forward step does (16 layers of qkv / o / gate_up / down, plus the lm head).
// Samples taken while other processes used the cores are repeated
// (bench/quiet.ts); the foreign load of the kept samples is recorded.
//
//   npm run bench:gemm [-- --m 1,8,64,512 --threads 2 --reps 5 --isa avx512bf16]
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { loadNative, type Isa } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { Limits } from './limits.js';
import { quietSample } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    m: { type: 'string', default: '1,8,64,512' },
    threads: { type: 'string', default: String(availableParallelism()) },
    reps: { type: 'string', default: '5' },
    isa: { type: 'string' },
  },
});
const THREADS = Number(args.threads);
const REPS = Number(args.reps);
const MS = args.m.split(',').map(Number);
const native = loadNative();
const isa = (args.isa as Isa | undefined) ?? native.selectedIsa();

// llama-3.2-1b: hidden 2048, 32 heads / 8 kv heads of 64, intermediate 8192, vocab 128256 (tied).
const H = 2048, I = 8192, V = 128256, QKV = (32 + 2 * 8) * 64, LAYERS = 16;
const SHAPES = [
  { name: 'qkv', N: QKV, K: H, segments: 1, perStep: LAYERS },
  { name: 'o', N: H, K: 32 * 64, segments: 8, perStep: LAYERS },
  { name: 'gate_up', N: 2 * I, K: H, segments: 1, perStep: LAYERS },
  { name: 'down', N: H, K: I, segments: 8, perStep: LAYERS },
  { name: 'lm_head', N: V, K: H, segments: 1, perStep: 1 },
] as const;

const probes = loadProbes();
const probe = new Limits(isa, THREADS);
probe.before();

interface Row {
  M: number;
  shape: string;
  N: number;
  K: number;
  seconds: number;
  gflops: number;
  gbps: number;
  foreignLoad: number;
  tries: number;
}
const rows: Row[] = [];
for (const M of MS) {
  for (const s of SHAPES) {
    const bytes = s.N * s.K * 2;
    // Fresh weights per call where the product is bandwidth bound; compute-bound ones reuse one copy.
    const copies = M <= 8 ? Math.max(1, Math.ceil(2 ** 30 / bytes)) : Math.max(1, Math.ceil(2 ** 28 / bytes));
    const reps = M >= 512 && s.name === 'lm_head' ? Math.min(REPS, 3) : REPS;
    const r = await quietSample(() => median(probes.gemmBench({ isa, threads: THREADS, M, N: s.N, K: s.K, segments: s.segments, copies, reps }).seconds));
    const seconds = r.value;
    rows.push({ M, shape: s.name, N: s.N, K: s.K, seconds, gflops: (2 * M * s.N * s.K) / seconds / 1e9, gbps: bytes / seconds / 1e9, foreignLoad: r.foreign, tries: r.tries });
  }
}

const limits = probe.after();
const bw = limits.readBandwidthBytesPerS / 1e9;
const peak = limits.peakFlops / 1e9;
console.log('');

const pct = (v: number) => `${(100 * v).toFixed(1)}%`.padStart(7);
console.log(`${'M'.padStart(4)} ${'matrix'.padEnd(9)} ${'N x K'.padEnd(13)} ${'ms'.padStart(9)} ${'GFLOP/s'.padStart(8)} ${'of peak'} ${'GB/s'.padStart(7)} ${'of bw'.padStart(7)}  foreign load`);
const steps: { M: number; seconds: number; gflops: number; gbps: number; ofPeak: number; ofBandwidth: number }[] = [];
for (const M of MS) {
  let t = 0, flops = 0, bytes = 0;
  for (const s of SHAPES) {
    const r = rows.find((x) => x.M === M && x.shape === s.name)!;
    console.log(`${String(M).padStart(4)} ${s.name.padEnd(9)} ${`${s.N} x ${s.K}`.padEnd(13)} ${(r.seconds * 1e3).toFixed(3).padStart(9)} ${r.gflops.toFixed(1).padStart(8)} ${pct(r.gflops / peak)} ${r.gbps.toFixed(1).padStart(7)} ${pct(r.gbps / bw)}  ${(100 * r.foreignLoad).toFixed(0)}%`);
    t += s.perStep * r.seconds;
    flops += s.perStep * 2 * M * s.N * s.K;
    bytes += s.perStep * s.N * s.K * 2;
  }
  const step = { M, seconds: t, gflops: flops / t / 1e9, gbps: bytes / t / 1e9, ofPeak: flops / t / 1e9 / peak, ofBandwidth: bytes / t / 1e9 / bw };
  steps.push(step);
  console.log(`${String(M).padStart(4)} ${'step'.padEnd(9)} ${'(all GEMMs)'.padEnd(13)} ${(t * 1e3).toFixed(3).padStart(9)} ${step.gflops.toFixed(1).padStart(8)} ${pct(step.ofPeak)} ${step.gbps.toFixed(1).padStart(7)} ${pct(step.ofBandwidth)}`);
}

const file = writeRecord('gemm', {
  threads: THREADS,
  isa,
  limits,
  shapes: rows,
  steps,
});
console.log(`\nrecord: ${file}`);
