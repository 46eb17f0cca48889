// Topology files and plans as plain functions: shards, the pipeline
// remainder rule, and readable refusals, against a fake machine.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TopologyError } from '../../topology/errors.js';
import type { Hardware } from '../../topology/hardware.js';
import { probeHardware } from '../../topology/hardware.js';
import { loadTopology, parseTopology, topologyFromFlags } from '../../topology/load.js';
import { buildPlan, describePlan, splitLayers, type ModelShape } from '../../topology/plan.js';

const MACHINE: Hardware = { cores: 2, memoryBytes: 24 * 2 ** 30, gpus: [], notes: ['fake 2-core machine'] };
const BIG: Hardware = { cores: 64, memoryBytes: 512 * 2 ** 30, gpus: [], notes: ['fake 64-core machine'] };
// llama-3.2-1b's shape
const ONE_B: ModelShape = { numLayers: 16, numHeads: 32, numKvHeads: 8, headDim: 64, hiddenSize: 2048, intermediateSize: 8192, vocabSize: 128256, tieWordEmbeddings: true, weightBytes: 2, kvBytes: 2 };
const EXAMPLES = fileURLToPath(new URL('../../../topology/examples/', import.meta.url));

const refusal = (yaml: string, hardware = MACHINE, model: ModelShape | undefined = ONE_B) => {
  const error = (() => {
    try {
      buildPlan(parseTopology(yaml), hardware, model);
    } catch (e) {
      return e as TopologyError;
    }
    throw new Error('expected a refusal');
  })();
  return error.message;
};

test('pipeline remainder rule: the first L mod P stages get one more layer', (t) => {
  t.deepEqual(splitLayers(16, 2), [8, 8]);
  t.deepEqual(splitLayers(32, 3), [11, 11, 10]);
  t.deepEqual(splitLayers(7, 4), [2, 2, 2, 1]);
});

test('tp2 splits heads, kv heads, MLP width and vocabulary in halves; each rank holds about half the weights', (t) => {
  const plan = buildPlan(parseTopology('tensor_parallel_size: 2\nthreads_per_rank: 1'), MACHINE, ONE_B);
  const [r0, r1] = plan.ranks;
  t.like(r0, { rank: 0, tpRank: 0, heads: [0, 16], kvHeads: [0, 4], ffn: [0, 4096], vocab: [0, 64128], layers: [0, 16] });
  t.like(r1, { rank: 1, tpRank: 1, heads: [16, 32], kvHeads: [4, 8], ffn: [4096, 8192], vocab: [64128, 128256] });
  const single = buildPlan(parseTopology('placement: local'), MACHINE, ONE_B).ranks[0]!;
  t.is(single.weightBytes, 2_471_763_968 - 2048 * 4 * 0, 'tp1: every matrix once, the tied embedding once (+ norms)');
  t.true(Math.abs(r0!.weightBytes! / single.weightBytes! - 0.5) < 0.01);
});

test('pp2 puts the embedding on stage 0 and the lm head on the last stage; a partition list overrides the rule', (t) => {
  const plan = buildPlan(parseTopology('pipeline_parallel_size: 2\nlayer_partition: [10, 6]\nthreads_per_rank: 1'), MACHINE, ONE_B);
  t.deepEqual(plan.layersPerStage, [10, 6]);
  t.like(plan.ranks[0], { stage: 0, layers: [0, 10], holdsEmbedding: true, holdsLmHead: false });
  t.like(plan.ranks[1], { stage: 1, layers: [10, 16], holdsEmbedding: false, holdsLmHead: true });
});

test('tensor size above the kv heads replicates them', (t) => {
  const plan = buildPlan(parseTopology('tensor_parallel_size: 8\nthreads_per_rank: 1'), BIG, { ...ONE_B, numKvHeads: 4 });
  t.deepEqual(plan.ranks.map((r) => r.kvHeads![0]), [0, 0, 1, 1, 2, 2, 3, 3]);
  t.regex(plan.notes.join(), /replicated on 2 ranks/);
});

test('impossible topologies are refused before start, every problem named with what to change', (t) => {
  t.regex(refusal('tensor_parallel_size: 3', BIG), /tensor_parallel_size 3 does not divide the 32 attention heads; use one of 1, 2, 4, 8, 16, 32/);
  t.regex(refusal('tensor_parallel_size: 16', BIG), /tensor_parallel_size 16 must divide the 8 fixed K segments of the row-parallel sums/);
  t.regex(refusal('pipeline_parallel_size: 17\nthreads_per_rank: 1', BIG), /pipeline_parallel_size 17 exceeds the model's 16 layers/);
  t.regex(refusal('tensor_parallel_size: 4'), /4 ranks on this machine need at least 4 cores, it has 2/);
  t.regex(refusal('tensor_parallel_size: 2\nthreads_per_rank: 2'), /2 ranks x 2 threads_per_rank = 4 compute threads, this machine has 2 cores; lower threads_per_rank to 1/);
  t.regex(refusal('memory: { kv_cache: 30GiB }\nplacement: local'), /need 32\.3 GiB \(weights \+ KV\), it has 24\.0 GiB/);
  t.regex(refusal('memory: { per_rank_limit: 1GiB }\nplacement: local'), /rank 0 needs .* over memory.per_rank_limit 1\.00 GiB/);
  t.regex(refusal('pipeline_parallel_size: 2\nthreads_per_rank: 1\nstages: [{ stage: 1, placement: { node: ghost } }]'), /stage 1 is placed on node "ghost", which is not listed under nodes/);
  t.regex(refusal('tensor_parallel_size: 2\nplacement: local\nthreads_per_rank: 1'), /placement "local" runs ranks in the main thread/);
  t.regex(refusal('pipeline_parallel_size: 2\nlayer_partition: [10, 10]\nthreads_per_rank: 1'), /layer_partition sums to 20 layers, the model has 16/);
  const many = refusal('tensor_parallel_size: 3\npipeline_parallel_size: 17', MACHINE);
  t.true(many.split('\n  - ').length >= 4, 'all problems at once');
});

test('allow_oversubscription runs more threads than cores, with a note', (t) => {
  const plan = buildPlan(parseTopology('tensor_parallel_size: 2\npipeline_parallel_size: 2\nthreads_per_rank: 1\nallow_oversubscription: true'), MACHINE, ONE_B);
  t.is(plan.ranks.length, 4);
  t.regex(plan.notes.join(), /oversubscribed: 4 compute threads on 2 cores/);
});

test('schema errors name the field: wrong types, unknown fields, bad YAML', (t) => {
  const message = (text: string) => t.throws(() => parseTopology(text), { instanceOf: TopologyError })!.message;
  t.regex(message('tensor_parallel_size: two'), /tensor_parallel_size: .*number/i);
  t.regex(message('tensor_parallel_size: 0'), /tensor_parallel_size: .*>\s*0|too small/i);
  t.regex(message('tensor_paralel_size: 2'), /unknown field tensor_paralel_size/);
  t.regex(message('placement: gpu'), /placement/);
  t.regex(message('memory: { kv_cache: lots }'), /memory\.kv_cache/);
  t.regex(message('a: [1, 2'), /not valid YAML/);
});

test('the flags build the same plan as a file', (t) => {
  const fromFlags = buildPlan(topologyFromFlags({ tensorParallelSize: 2 }), MACHINE, ONE_B);
  const fromFile = buildPlan(parseTopology('tensor_parallel_size: 2\nplacement: thread'), MACHINE, ONE_B);
  t.deepEqual(fromFlags.ranks, fromFile.ranks);
  t.is(topologyFromFlags({}).placement, 'local');
});

test('every example parses; the ones that fit this kind of machine plan, and describePlan prints each rank', (t) => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
  t.deepEqual(files, ['pp2.yaml', 'single.yaml', 'tp2-pp2.yaml', 'tp2.yaml', 'two-node-pp2.yaml', 'two-node-tp2.yaml']);
  for (const file of files) {
    const topology = loadTopology(EXAMPLES + file);
    const plan = buildPlan(topology, BIG, ONE_B, file);
    const text = describePlan(plan);
    t.is(text.split('\n').filter((l) => l.startsWith('  rank ')).length, plan.ranks.length, file);
  }
});

test('the hardware probe reports what this process may use', (t) => {
  const hw = probeHardware();
  t.true(hw.cores >= 1);
  t.true(hw.memoryBytes > 2 ** 30);
  t.true(hw.notes.length >= 2);
});

test('a tensor group across nodes: one placement per tensor rank, only the leader\'s ranks count against its cores, and a note says the all-reduces use the link', (t) => {
  const nodes = '\nnodes: [{ name: n1, address: 10.0.0.2 }, { name: n2, address: 10.0.0.3 }]';
  const plan = buildPlan(parseTopology(`tensor_parallel_size: 4\nthreads_per_rank: 1\nstages: [{ stage: 0, rank_placements: [thread, process, { node: n1 }, { node: n2 }] }]${nodes}`), MACHINE, ONE_B);
  t.deepEqual(plan.ranks.map((r) => r.placement), ['thread', 'process', { node: 'n1' }, { node: 'n2' }]);
  t.is(plan.localCoresUsed, 2);
  t.regex(plan.notes.join('\n'), /stage 0's tensor group spans this machine and node n1 and node n2: its all-reduces go over the node links/);
  const whole = buildPlan(parseTopology(`tensor_parallel_size: 2\npipeline_parallel_size: 2\nthreads_per_rank: 1\nstages: [{ stage: 1, placement: { node: n1 } }]${nodes}`), MACHINE, ONE_B);
  t.regex(whole.notes.join('\n'), /stage 1's tensor group spans node n1 \(a joined node: the leader's shared memory cannot serve it\)/);
  t.regex(refusal(`tensor_parallel_size: 2\nthreads_per_rank: 1\nstages: [{ stage: 0, rank_placements: [thread] }]${nodes}`), /stage 0: rank_placements has 1 entries for tensor_parallel_size 2; give one placement per tensor rank/);
  t.regex(refusal(`tensor_parallel_size: 2\nthreads_per_rank: 1\nstages: [{ stage: 0, rank_placements: [{ node: n1 }, thread] }]${nodes}`), /stage 0, tensor rank 0 must run on this machine \(the leader\), where steps start/);
  t.regex(refusal(`tensor_parallel_size: 2\nthreads_per_rank: 1\nstages: [{ stage: 0, rank_placements: [thread, { node: ghost }] }]${nodes}`), /stage 0, tensor rank 1 is placed on node "ghost", which is not listed under nodes/);
  t.throws(() => parseTopology('tensor_parallel_size: 2\nstages: [{ stage: 0, placement: thread, rank_placements: [thread, thread] }]'), { message: /either placement \(all its ranks\) or rank_placements/ });
  const crowded = buildPlan(parseTopology(`tensor_parallel_size: 8\nthreads_per_rank: 1\nstages: [{ stage: 0, rank_placements: [thread, { node: n1 }, { node: n1 }, { node: n1 }, { node: n1 }, { node: n1 }, { node: n2 }, { node: n2 }] }]${nodes}`), BIG, ONE_B);
  t.regex(crowded.notes.join('\n'), /node n1 hosts 5 ranks: start its agent with UV_THREADPOOL_SIZE=5/);
  t.notRegex(crowded.notes.join('\n'), /node n2 hosts/);
});
