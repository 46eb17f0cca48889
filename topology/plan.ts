// A topology checked against the model and the hardware: which rank holds
// which shard, layers per stage, memory per rank, threads per core. A plain
// function with no I/O; every problem is collected so the user sees them all.
//
// Ranks are numbered stage-major: rank = stage * tp + tpRank.
// Pipeline remainder rule: L layers over P stages give floor(L / P) to each
// stage and one more to each of the first L mod P stages (the last stage also
// runs the final norm and lm head, so extra layers go to the front). A
// layer_partition list overrides it.
import { formatBytes, parseMemory } from '../actors/kv-cache/kv-plan.js';
import { TopologyError } from './errors.js';
import type { Hardware } from './hardware.js';
import type { RankPlacement, Topology } from './schema.js';

export interface ModelShape {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  /** Bytes per weight element as the ranks hold them (2 for bf16): the embedding, and linears not listed below. */
  weightBytes: number;
  /** Bytes per weight of the attention linears (q/k/v/o), of the MLP linears and of the lm head, when they differ (FP8: 1). */
  attentionBytes?: number;
  mlpBytes?: number;
  lmHeadBytes?: number;
  /** Bytes per KV element (2 for bf16, 4 for fp32, 1 for an FP8 cache). */
  kvBytes: number;
}

type Range = [number, number];

interface RankPlan {
  rank: number;
  stage: number;
  tpRank: number;
  placement: RankPlacement;
  threads: number;
  layers: Range;
  /** Shards, as [start, end) of the full dimension (absent without a model). */
  heads?: Range;
  kvHeads?: Range;
  ffn?: Range;
  vocab?: Range;
  holdsEmbedding: boolean;
  holdsLmHead: boolean;
  weightBytes?: number;
  kvCacheBytes?: number;
}

export interface TopologyPlan {
  tp: number;
  pp: number;
  layersPerStage: number[];
  ranks: RankPlan[];
  localCoresUsed: number;
  hardware: Hardware;
  notes: string[];
}

export function splitLayers(layers: number, stages: number): number[] {
  const base = Math.floor(layers / stages);
  return Array.from({ length: stages }, (_, s) => base + (s < layers % stages ? 1 : 0));
}

function shard(total: number, parts: number, index: number): Range {
  const size = Math.ceil(total / parts);
  return [Math.min(total, index * size), Math.min(total, (index + 1) * size)];
}

const isLocal = (p: RankPlacement) => typeof p === 'string';

/** Shared memory serves a tensor group only when all its ranks are on the leader; otherwise its all-reduces go over the node links. */
export function tensorGroupOnLeader(placements: RankPlacement[]): boolean {
  return placements.every(isLocal);
}

function describeMachines(placements: RankPlacement[]): string {
  const machines = [...new Set(placements.map((p) => (typeof p === 'object' ? `node ${p.node}` : 'this machine')))];
  return machines.length > 1 ? machines.join(' and ') : `${machines[0]} (a joined node: the leader's shared memory cannot serve it)`;
}

export function buildPlan(topology: Topology, hardware: Hardware, model?: ModelShape, source = 'topology'): TopologyPlan {
  const problems: string[] = [];
  const notes: string[] = [];
  const tp = topology.tensor_parallel_size;
  const pp = topology.pipeline_parallel_size;
  const numLayers = model?.numLayers ?? topology.layer_partition?.reduce((a, b) => a + b, 0) ?? pp;

  // --- layers per stage
  let layersPerStage = splitLayers(numLayers, pp);
  if (topology.layer_partition) {
    const partition = topology.layer_partition;
    if (partition.length !== pp) problems.push(`layer_partition has ${partition.length} entries for ${pp} pipeline stages; give one count per stage`);
    const sum = partition.reduce((a, b) => a + b, 0);
    if (model && sum !== model.numLayers) problems.push(`layer_partition sums to ${sum} layers, the model has ${model.numLayers}`);
    layersPerStage = partition;
  }
  if (model && pp > model.numLayers) problems.push(`pipeline_parallel_size ${pp} exceeds the model's ${model.numLayers} layers; use at most ${model.numLayers}`);

  // --- tensor shards
  if (![1, 2, 4, 8].includes(tp)) {
    problems.push(`tensor_parallel_size ${tp} must divide the 8 fixed K segments of the row-parallel sums (DESIGN.md, Numerics); use 1, 2, 4 or 8`);
  }
  if (model) {
    if (model.numHeads % tp !== 0) {
      problems.push(`tensor_parallel_size ${tp} does not divide the ${model.numHeads} attention heads; use one of ${divisors(model.numHeads).join(', ')}`);
    }
    if (tp > model.numKvHeads) {
      if (tp % model.numKvHeads !== 0) problems.push(`tensor_parallel_size ${tp} is not a multiple of the ${model.numKvHeads} kv heads, so they cannot be replicated evenly`);
      else notes.push(`each of the ${model.numKvHeads} kv heads is replicated on ${tp / model.numKvHeads} ranks (tensor size > kv heads)`);
    } else if (model.numKvHeads % tp !== 0) {
      problems.push(`tensor_parallel_size ${tp} does not divide the ${model.numKvHeads} kv heads; use one of ${divisors(model.numKvHeads).join(', ')}`);
    }
    if (model.intermediateSize % tp !== 0) problems.push(`tensor_parallel_size ${tp} does not divide the MLP width ${model.intermediateSize}`);
  }

  // --- placement (per rank: a stage's tensor ranks may sit on different machines)
  const nodeNames = new Set(topology.nodes.map((n) => n.name));
  const stageEntry = (stage: number) => topology.stages.find((s) => s.stage === stage);
  const rankPlacement = (stage: number, tpRank: number): RankPlacement => {
    const entry = stageEntry(stage);
    return entry?.rank_placements?.[tpRank] ?? entry?.placement ?? topology.placement;
  };
  for (const s of topology.stages) {
    if (s.stage >= pp) problems.push(`stages: stage ${s.stage} does not exist (stages are 0..${pp - 1})`);
    if (s.rank_placements && s.rank_placements.length !== tp) {
      problems.push(`stage ${s.stage}: rank_placements has ${s.rank_placements.length} entries for tensor_parallel_size ${tp}; give one placement per tensor rank`);
    }
  }
  const placements = Array.from({ length: pp }, (_, s) => Array.from({ length: tp }, (_, r) => rankPlacement(s, r)));
  for (let s = 0; s < pp; s++) {
    const nodes = new Set<string>();
    for (const [r, p] of placements[s]!.entries()) {
      const where = tp > 1 ? `stage ${s}, tensor rank ${r}` : `stage ${s}`;
      if (typeof p === 'object') {
        if (!nodeNames.has(p.node) && !nodes.has(p.node)) problems.push(`${where} is placed on node "${p.node}", which is not listed under nodes`);
        nodes.add(p.node);
      }
    }
    if (placements[s]!.includes('local') && tp * pp > 1) problems.push(`placement "local" runs ranks in the main thread, where ${tp * pp} ranks would block each other in their collectives; use "thread" or "process"`);
  }
  if (typeof placements[0]![0] === 'object') {
    problems.push(tp > 1
      ? 'stage 0, tensor rank 0 must run on this machine (the leader), where steps start; place its other tensor ranks and later stages on nodes'
      : 'stage 0 must run on this machine (the leader); place later stages on nodes');
  }

  // --- threads and cores (ranks on this machine only)
  const localRanks = placements.flat().filter(isLocal).length;
  const threads = topology.threads_per_rank ?? Math.max(1, Math.floor(hardware.cores / Math.max(1, localRanks)));
  const localCoresUsed = localRanks * threads;
  if (topology.allow_oversubscription) {
    if (localCoresUsed > hardware.cores) notes.push(`oversubscribed: ${localCoresUsed} compute threads on ${hardware.cores} cores (allow_oversubscription); correct, but slower than a fitting layout`);
  } else if (localRanks > hardware.cores) problems.push(`${localRanks} ranks on this machine need at least ${localRanks} cores, it has ${hardware.cores}; lower the tensor or pipeline size, or place stages on nodes`);
  else if (localCoresUsed > hardware.cores) problems.push(`${localRanks} ranks x ${threads} threads_per_rank = ${localCoresUsed} compute threads, this machine has ${hardware.cores} cores; lower threads_per_rank to ${Math.floor(hardware.cores / localRanks)}`);
  // a node agent runs its ranks' native steps on its libuv pool; a rank waiting in a collective holds a pool thread
  const perNode = new Map<string, number>();
  for (const p of placements.flat()) if (typeof p === 'object') perNode.set(p.node, (perNode.get(p.node) ?? 0) + 1);
  for (const [node, count] of perNode) {
    if (count > 4) notes.push(`node ${node} hosts ${count} ranks: start its agent with UV_THREADPOOL_SIZE=${count} (Node's default pool of 4 threads runs 4 native steps at once)`);
  }
  for (let s = 0; s < pp; s++) {
    if (tp > 1 && !tensorGroupOnLeader(placements[s]!)) notes.push(`stage ${s}'s tensor group spans ${describeMachines(placements[s]!)}: its all-reduces go over the node links`);
  }

  // --- ranks and memory
  const ranks: RankPlan[] = [];
  let firstLayer = 0;
  for (let stage = 0; stage < pp; stage++) {
    const layers: Range = [firstLayer, firstLayer + (layersPerStage[stage] ?? 0)];
    firstLayer = layers[1];
    for (let tpRank = 0; tpRank < tp; tpRank++) {
      const rank: RankPlan = {
        rank: stage * tp + tpRank, stage, tpRank, placement: placements[stage]![tpRank]!, threads, layers,
        holdsEmbedding: stage === 0, holdsLmHead: stage === pp - 1,
      };
      if (model) Object.assign(rank, shardsOf(model, tp, tpRank, rank));
      ranks.push(rank);
    }
  }
  if (model) checkMemory(topology, hardware, ranks, problems);
  if (problems.length) throw new TopologyError(source, problems);
  return { tp, pp, layersPerStage, ranks, localCoresUsed, hardware, notes };
}

function shardsOf(model: ModelShape, tp: number, tpRank: number, rank: RankPlan): Partial<RankPlan> {
  const heads = shard(model.numHeads, tp, tpRank);
  const kvHeads: Range = tp > model.numKvHeads
    ? [Math.floor(tpRank / (tp / model.numKvHeads)), Math.floor(tpRank / (tp / model.numKvHeads)) + 1]
    : shard(model.numKvHeads, tp, tpRank);
  const ffn = shard(model.intermediateSize, tp, tpRank);
  const vocab = shard(model.vocabSize, tp, tpRank);
  const h = model.hiddenSize;
  const qkv = h * ((heads[1] - heads[0]) + 2 * (kvHeads[1] - kvHeads[0])) * model.headDim;
  const o = (heads[1] - heads[0]) * model.headDim * h;
  const mlp = 3 * h * (ffn[1] - ffn[0]);
  const perLayer = (qkv + o) * (model.attentionBytes ?? model.weightBytes) + mlp * (model.mlpBytes ?? model.weightBytes) + 2 * h * 4;
  const nLayers = rank.layers[1] - rank.layers[0];
  const vocabRows = (vocab[1] - vocab[0]) * h * model.weightBytes;
  // a tied lm head is the embedding itself when one rank holds both
  const lmHeadRows = rank.holdsLmHead && !(model.tieWordEmbeddings && rank.holdsEmbedding)
    ? (vocab[1] - vocab[0]) * h * (model.lmHeadBytes ?? model.weightBytes) : 0;
  const weightBytes = perLayer * nLayers + (rank.holdsEmbedding ? vocabRows : 0) + lmHeadRows + (rank.holdsLmHead ? h * 4 : 0);
  const kvPerToken = nLayers * 2 * (kvHeads[1] - kvHeads[0]) * model.headDim * model.kvBytes;
  return { heads, kvHeads, ffn, vocab, weightBytes, kvCacheBytes: kvPerToken };
}

function checkMemory(topology: Topology, hardware: Hardware, ranks: RankPlan[], problems: string[]): void {
  const kvBudget = topology.memory.kv_cache === undefined ? 2 * 2 ** 30 : parseMemory(topology.memory.kv_cache, 'memory.kv_cache');
  const limit = topology.memory.per_rank_limit === undefined ? undefined : parseMemory(topology.memory.per_rank_limit, 'memory.per_rank_limit');
  let local = 0;
  for (const r of ranks) {
    r.kvCacheBytes = kvBudget; // the KV budget is per rank, like vLLM's per-GPU budget
    const total = r.weightBytes! + kvBudget;
    if (limit !== undefined && total > limit) {
      problems.push(`rank ${r.rank} needs ${formatBytes(total)} (weights ${formatBytes(r.weightBytes!)} + KV ${formatBytes(kvBudget)}), over memory.per_rank_limit ${formatBytes(limit)}`);
    }
    if (isLocal(r.placement)) local += total;
  }
  if (local > hardware.memoryBytes) {
    problems.push(`the ranks on this machine need ${formatBytes(local)} (weights + KV), it has ${formatBytes(hardware.memoryBytes)}; lower memory.kv_cache or place stages on nodes`);
  }
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

/** The plan as the `topology check` command prints it. */
export function describePlan(plan: TopologyPlan): string {
  const lines = [
    `tensor_parallel_size ${plan.tp} x pipeline_parallel_size ${plan.pp} = ${plan.ranks.length} rank(s)`,
    `layers per stage: ${plan.layersPerStage.join(', ')}`,
    `hardware: ${plan.hardware.notes.join('; ')}`,
    `compute threads on this machine: ${plan.localCoresUsed} of ${plan.hardware.cores} cores`,
  ];
  for (const r of plan.ranks) {
    const where = typeof r.placement === 'string' ? r.placement : `node ${r.placement.node}`;
    const parts = [`rank ${r.rank}: stage ${r.stage}, tp rank ${r.tpRank}, ${where}, ${r.threads} thread(s), layers ${r.layers[0]}..${r.layers[1] - 1}`];
    if (r.heads) parts.push(`heads ${r.heads[0]}..${r.heads[1] - 1}, kv heads ${r.kvHeads![0]}..${r.kvHeads![1] - 1}, mlp ${r.ffn![0]}..${r.ffn![1] - 1}, vocab ${r.vocab![0]}..${r.vocab![1] - 1}`);
    if (r.holdsEmbedding || r.holdsLmHead) parts.push([r.holdsEmbedding ? 'embedding' : '', r.holdsLmHead ? 'lm head' : ''].filter(Boolean).join(' + '));
    if (r.weightBytes !== undefined) parts.push(`weights ${formatBytes(r.weightBytes)} + KV ${formatBytes(r.kvCacheBytes!)}`);
    lines.push(`  ${parts.join('; ')}`);
  }
  for (const note of plan.notes) lines.push(`note: ${note}`);
  return lines.join('\n');
}
