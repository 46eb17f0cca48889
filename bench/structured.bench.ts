// Structured-output benchmark: what a grammar costs a 64-sequence decode step,
// and how long a schema takes to compile.
//
//   unconstrained step   model.step of R decode rows (temperature 1), no masks
//   constrained step     the same rows, each with its grammar's token mask applied
//                        in the lm head (native/src/sampling/sampling.h tile_lse with a mask;
//                        the blocks a mask clears skip the exp, so it may cost less)
//   mask compute         the scheduler's share per step: each row's matcher
//                        accepts its token and fills its next mask (xgrammar)
//   overhead             (constrained step + mask compute) / unconstrained - 1;
//                        target: at most 5% at 64 rows
//   overhead by parts    (mask compute + the sampler's masked - unmasked time) /
//                        unconstrained step: the same cost from its two parts, each
//                        timed on its own (a large model's step varies from run to
//                        run by more than the constraint costs it)
// Also the sampler alone over R rows of 128256 logits (sampleBench) with and
// without masks, and each schema of test/fixtures/structured/schemas.json
// compiled against the Llama 3.1 vocabulary (plus a tool-call schema).
// Steps alternate constrained / unconstrained so load drifts hit both alike;
// the foreign load of each phase is recorded (bench/quiet.ts).
//
//   npm run bench:structured [-- --preset tiny|llama-3.2-1b --rows 64 --steps 8 --threads 2]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrammarEngine } from '../actors/grammar/grammar-engine.js';
import type { GrammarSpec } from '../actors/grammar/grammar-spec.js';
import type { SequenceGrammar } from '../actors/grammar/sequence-grammar.js';
import { Vocabulary } from '../actors/tokenizer/vocabulary.js';
import type { SequenceStep } from '../models/batch.js';
import { generateModel } from '../models/generator.js';
import { LlamaModel } from '../models/llama.js';
import { PageAllocator } from '../models/pages.js';
import { packSampling, type SampleRequest } from '../models/sampling.js';
import { loadNative } from '../native/index.js';
import { loadProbes } from '../native/probes.js';
import { LoadProbe } from './quiet.js';
import { median, writeRecord } from './record.js';

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'tiny' },
    rows: { type: 'string', default: '64' },
    steps: { type: 'string', default: '8' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const PRESET = args.preset!;
const ROWS = Number(args.rows);
const STEPS = Number(args.steps);
const THREADS = Number(args.threads);
const EOS = [128001, 128008, 128009];
const BLOCK = 16;
const native = loadNative();
const probes = loadProbes();

const schemas = JSON.parse(readFileSync(new URL('../../test/fixtures/structured/schemas.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;

// The model: tiny generated afresh, or a cached benchmark preset (generated once).
let scratch: string | undefined;
let dir: string;
if (PRESET === 'tiny') {
  scratch = mkdtempSync(join(tmpdir(), 'troupe-structured-'));
  dir = scratch;
  generateModel({ preset: 'tiny', seed: 7, out: dir, dtype: 'bf16' });
} else {
  dir = join(homedir(), '.cache', 'troupe', 'models', `${PRESET}-seed1-bf16`);
  if (!existsSync(join(dir, 'config.json'))) {
    console.log(`generating ${PRESET} into ${dir} ...`);
    generateModel({ preset: PRESET, seed: 1, out: dir, dtype: 'bf16' });
  }
}

// Compile times: the tokenizer info once, then every schema (each compiled once: the engine's cache is keyed by spec).
let t0 = performance.now();
const vocab = Vocabulary.load(dir);
const engine = await GrammarEngine.create(vocab, { vocabSize: 128256, stopTokenIds: EOS });
const tokenizerInfoMs = performance.now() - t0;
const toolSchema: Record<string, unknown> = {
  anyOf: ['get_weather', 'get_time'].map((name) => ({
    type: 'object', required: ['name', 'parameters'], additionalProperties: false,
    properties: { name: { const: name }, parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city'] } },
  })),
};
const compileMs: Record<string, number> = {};
for (const [name, schema] of [...Object.entries(schemas), ['tool-call (2 functions)', toolSchema] as const]) {
  const started = performance.now();
  await engine.compile({ type: 'json_schema', schema });
  compileMs[name] = performance.now() - started;
}

// One matcher per row, each a few tokens into its document (rows cycle over the schemas).
const specs: GrammarSpec[] = Object.values(schemas).map((schema) => ({ type: 'json_schema', schema }));
const matchers: SequenceGrammar[] = [];
for (let r = 0; r < ROWS; r++) matchers.push(engine.matcher(await engine.compile(specs[r % specs.length]!)));

const model = LlamaModel.load(dir, { dtype: 'bfloat16', threads: THREADS, blockSize: BLOCK, maxModelLen: 2048, numBlocks: ROWS * 4 + 8 });
const pages = new PageAllocator(model.kvCache.numBlocks);
const tables = Array.from({ length: ROWS }, () => pages.ensure([], 3 * BLOCK, BLOCK));
const prompt = (r: number) => [128000, 9906 + r, 1917, 11];

// Prefill every row once.
await model.step(tables.map((blockTable, r) => ({ tokens: prompt(r), cachedTokens: 0, blockTable })));
const cached = new Array<number>(ROWS).fill(4);
const last = Array.from({ length: ROWS }, (_, r) => prompt(r)[3]!);
const words = Math.ceil(128256 / 32);
const masks = Array.from({ length: ROWS }, () => new Uint32Array(words));

function decodeSteps(sample: (r: number) => SampleRequest): SequenceStep[] {
  return tables.map((blockTable, r) => ({ tokens: [last[r]!], cachedTokens: cached[r]!, blockTable, sample: sample(r) }));
}

const plainMs: number[] = [];
const maskedMs: number[] = [];
const maskComputeMs: number[] = [];
const probe = new LoadProbe();
for (let s = 0; s < STEPS && cached[0]! + 2 < 3 * BLOCK; s++) {
  // unconstrained
  let started = performance.now();
  let results = await model.step(decodeSteps((r) => ({ params: { temperature: 1 }, seed: r, outputIndex: s })));
  plainMs.push(performance.now() - started);
  for (let r = 0; r < ROWS; r++) {
    cached[r]!++;
    last[r] = results[r]!.token!;
  }
  // constrained: masks, the step with them, then each matcher accepts its token
  started = performance.now();
  for (let r = 0; r < ROWS; r++) {
    if (matchers[r]!.terminated) matchers[r]!.replay([]);
    matchers[r]!.fillMask(masks[r]!);
  }
  let compute = performance.now() - started;
  started = performance.now();
  results = await model.step(decodeSteps((r) => ({ params: { temperature: 1 }, seed: r, outputIndex: s, mask: masks[r]! })));
  maskedMs.push(performance.now() - started);
  started = performance.now();
  for (let r = 0; r < ROWS; r++) {
    const token = results[r]!.token!;
    if (!matchers[r]!.accept(token)) throw new Error(`row ${r}: the matcher refused token ${token}, which its mask allowed`);
    cached[r]!++;
    last[r] = token;
  }
  compute += performance.now() - started;
  maskComputeMs.push(compute);
}
const stepForeign = probe.foreign();
await model.close();

// The sampler alone: R rows of logits, with and without masks (the masks of the matchers' current states).
const V = 128256;
const logits = new Float32Array(ROWS * V);
for (let i = 0; i < logits.length; i++) logits[i] = Math.sin(i * 12.9898) * 3;
const rows = (masked: boolean): SampleRequest[] => Array.from({ length: ROWS }, (_, r) => ({ params: { temperature: 1 }, seed: r, outputIndex: 0, ...(masked ? { mask: masks[r]! } : {}) }));
const benchProbe = new LoadProbe();
const plainSampler = probes.sampleBench(logits, V, packSampling(rows(false)), { threads: THREADS, reps: 5 });
const maskedSampler = probes.sampleBench(logits, V, packSampling(rows(true)), { threads: THREADS, reps: 5 });
const samplerForeign = benchProbe.foreign();

for (const m of matchers) m.dispose();
if (scratch) rmSync(scratch, { recursive: true, force: true });

const plain = median(plainMs), masked = median(maskedMs), compute = median(maskComputeMs);
const overhead = (masked + compute) / plain - 1;
const samplerPlain = median(plainSampler.lseMs) + median(plainSampler.sampleMs);
const samplerMasked = median(maskedSampler.lseMs) + median(maskedSampler.sampleMs);
const partsOverhead = (compute + (samplerMasked - samplerPlain)) / plain;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log(`structured output, ${PRESET}, ${ROWS} rows, ${THREADS} threads, ISA ${native.selectedIsa()}; foreign load ${pct(stepForeign)} (steps), ${pct(samplerForeign)} (sampler)`);
console.log(`  tokenizer info (once per process): ${tokenizerInfoMs.toFixed(0)} ms`);
for (const [name, ms] of Object.entries(compileMs)) console.log(`  compile ${name.padEnd(24)} ${ms.toFixed(1)} ms`);
console.log(`  unconstrained step             ${plain.toFixed(2)} ms (median of ${plainMs.length})`);
console.log(`  constrained step (masks in)    ${masked.toFixed(2)} ms: application ${pct(masked / plain - 1)}`);
console.log(`  mask compute (accept + fill)   ${compute.toFixed(2)} ms for ${ROWS} rows (${(compute / ROWS * 1000).toFixed(0)} us a row)`);
console.log(`  constraint overhead            ${pct(overhead)} (target <= 5%)`);
console.log(`  sampler alone: ${samplerPlain.toFixed(2)} ms unmasked, ${samplerMasked.toFixed(2)} ms masked (lse + sample, medians)`);
console.log(`  overhead by parts              ${pct(partsOverhead)} (mask compute + masked sampling, over the unconstrained step)`);
const file = writeRecord('structured', {
  preset: PRESET, rows: ROWS, threads: THREADS, steps: plainMs.length,
  tokenizerInfoMs, compileMs,
  stepMs: { unconstrained: plainMs, constrained: maskedMs, maskCompute: maskComputeMs },
  medians: { unconstrained: plain, constrained: masked, maskCompute: compute },
  overhead, applicationOverhead: masked / plain - 1, partsOverhead, targetOverhead: 0.05,
  sampler: { unmaskedMs: samplerPlain, maskedMs: samplerMasked },
  foreignLoad: { steps: stepForeign, sampler: samplerForeign },
});
console.log(`  record: ${file}`);
