// Attention benchmark: the paged-attention kernel (native/src/kernels/model_kernels_impl.h)
// on the llama-3.2-1b attention shape (32 query heads, 8 kv heads, head dim 64,
// bf16 KV) for each KV block size, to choose the default block size by
// measurement. One thread (the kernel binding runs the tasks in order; the
// model spreads them over its compute threads, per sequence and kv head):
//   decode    8 sequences x 1 query over a context of --context tokens each
//   prefill   one chunk of --chunk queries over a cached prefix of --prefix tokens
// Prints ms per call and the KV bytes read per second; records JSON.
//
//   npm run bench:attention [-- --block-sizes 16,32,64,128 --context 4096 --chunk 512 --prefix 1536]
import { parseArgs } from 'node:util';
import { loadNative } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { quietSample } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    'block-sizes': { type: 'string', default: '16,32,64,128' },
    context: { type: 'string', default: '4096' },
    chunk: { type: 'string', default: '512' },
    prefix: { type: 'string', default: '1536' },
    reps: { type: 'string', default: '5' },
  },
});
const native = loadNative();
const probes = loadProbes();
const isa = native.selectedIsa();
const HEADS = 32, KV = 8, D = 64;
const CONTEXT = Number(args.context), CHUNK = Number(args.chunk), PREFIX = Number(args.prefix), REPS = Number(args.reps);

let seed = 99;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;

/** ms per attention call over `seqs` sequences of `queryLen` queries after `context` cached tokens. */
function run(blockSize: number, queryLens: number[], contextLens: number[]): number {
  const pagesPer = contextLens.map((c) => Math.ceil(c / blockSize));
  const numBlocks = pagesPer.reduce((a, b) => a + b, 0);
  const pageElems = 2 * KV * D * blockSize;
  const kv = new Uint16Array(numBlocks * pageElems);
  for (let i = 0; i < kv.length; i++) kv[i] = 0x3c00 + ((i * 2654435761) >>> 24); // bf16 around 2^-7..2^-6
  const maxBlocks = Math.max(...pagesPer);
  const tables = new Int32Array(queryLens.length * maxBlocks);
  let next = 0;
  pagesPer.forEach((n, s) => {
    for (let b = 0; b < n; b++) tables[s * maxBlocks + b] = next++;
  });
  const T = queryLens.reduce((a, b) => a + b, 0);
  const q = Float32Array.from({ length: T * HEADS * D }, rand);
  const out = new Float32Array(T * HEADS * D);
  const args = {
    q, ldQ: HEADS * D, out, ldOut: HEADS * D, kv, layout: { numBlocks, blockSize, kvHeads: KV, headDim: D, bf16: true },
    queryLens: Int32Array.from(queryLens), contextLens: Int32Array.from(contextLens), blockTables: tables, maxBlocks,
    numHeads: HEADS, scale: 1 / Math.sqrt(D), taskRows: 64,
  };
  probes.modelKernel('attention', isa, args); // warm up
  const times: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    probes.modelKernel('attention', isa, args);
    times.push(performance.now() - t0);
  }
  return median(times);
}

const blockSizes = args['block-sizes'].split(',').map(Number);
const rows: { blockSize: number; decodeMs: number; prefillMs: number; decodeGBps: number; foreign: number[] }[] = [];
console.log(`paged attention, ${HEADS} heads / ${KV} kv heads / dim ${D}, bf16 KV, 1 thread, isa ${isa}, median of ${REPS}`);
console.log(`decode: 8 sequences x 1 query over ${CONTEXT} cached tokens; prefill: ${CHUNK} queries after a ${PREFIX}-token prefix\n`);
console.log(`${'block size'.padStart(10)} ${'decode ms'.padStart(10)} ${'KV GB/s'.padStart(8)} ${'prefill ms'.padStart(11)}`);
for (const bs of blockSizes) {
  const d = await quietSample(() => run(bs, new Array(8).fill(1), new Array(8).fill(CONTEXT)));
  const p = await quietSample(() => run(bs, [CHUNK], [PREFIX + CHUNK]));
  const kvBytes = 8 * CONTEXT * 2 * KV * D * 2;
  const row = { blockSize: bs, decodeMs: d.value, prefillMs: p.value, decodeGBps: kvBytes / (d.value / 1e3) / 1e9, foreign: [d.foreign, p.foreign] };
  rows.push(row);
  console.log(`${String(bs).padStart(10)} ${d.value.toFixed(2).padStart(10)} ${row.decodeGBps.toFixed(1).padStart(8)} ${p.value.toFixed(1).padStart(11)}`);
}
const file = writeRecord('attention', { isa, heads: HEADS, kvHeads: KV, headDim: D, context: CONTEXT, chunk: CHUNK, prefix: PREFIX, rows });
console.log(`\nrecord: ${file}`);
