// The rank group of the engine from a topology plan (topology/plan.ts):
// which ranks exist, where each runs, what each holds, and how the scheduler
// reaches them. Checked against the hardware and the model before any actor
// starts (buildPlan throws a TopologyError listing every problem).
//
//   ranks (one_for_all)
//   ├─ tensor-groups       shm collectives, one group per stage with tp > 1 (leader process)
//   ├─ rank0 .. rankN-1    rank = stage * tp + tpRank; placement per stage
//
// rank0 (stage 0, tp rank 0) is the one the scheduler asks; the other ranks
// of stage 0 get the same step; rank (s, i) passes its residual stream to
// rank (s + 1, i); rank 0 of the last stage replies.
import { modelChecksum } from '../../models/checksum.js';
import type { LlamaConfig } from '../../models/config.js';
import type { ModelOptions } from '../../models/options.js';
import { shardOfRank, tensorGroupCapacity } from '../../models/shard.js';
import { moduleActor, type ChildSpec } from '../../runtime/index.js';
import { TopologyError } from '../../topology/errors.js';
import { probeHardware, type Hardware } from '../../topology/hardware.js';
import { loadTopology } from '../../topology/load.js';
import { modelShape, type ModelShapeOptions } from '../../topology/model-shape.js';
import { buildPlan, describePlan, type TopologyPlan } from '../../topology/plan.js';
import { topologySchema, type Topology } from '../../topology/schema.js';
import type { RankFaults, RankOptions } from '../rank/rank-actor.js';
import { PATHS, rankId, rankPath, TREE_IDS } from './engine-tree.js';

const RANK = new URL('../rank/rank-actor.js', import.meta.url).href;
const GROUPS = new URL('../rank/tensor-groups.js', import.meta.url).href;


export interface ParallelOptions {
  /** A topology (parsed, or a YAML file); else one from the sizes below. */
  topology?: Topology | string;
  tensorParallelSize?: number;
  pipelineParallelSize?: number;
  /** Where ranks run when no topology says (default 'thread' for several ranks). */
  placement?: 'thread' | 'process';
  /** Run more compute threads than cores (tests): correct, slower. */
  allowOversubscription?: boolean;
  /** Every collective wait of a step is bounded by this (default 120 s). */
  collectiveTimeoutMs?: number;
}

/** The topology these options describe, or undefined for the single whole-model rank. */
export function topologyOf(options: ParallelOptions, kvCacheMemory: string | number | undefined): Topology | undefined {
  let topology: Topology;
  if (options.topology !== undefined) {
    topology = typeof options.topology === 'string' ? loadTopology(options.topology) : options.topology;
  } else {
    const tp = options.tensorParallelSize ?? 1, pp = options.pipelineParallelSize ?? 1;
    if (tp * pp === 1) return undefined;
    topology = topologySchema.parse({
      tensor_parallel_size: tp, pipeline_parallel_size: pp, placement: options.placement ?? 'thread',
      allow_oversubscription: options.allowOversubscription ?? false,
    });
  }
  // the engine's KV budget is per rank, as the plan checks it
  if (kvCacheMemory !== undefined && topology.memory.kv_cache === undefined) topology = { ...topology, memory: { ...topology.memory, kv_cache: kvCacheMemory } };
  return topology;
}

export function planRanks(topology: Topology, modelDir: string, dtype: string, source = 'topology', shapeOptions: ModelShapeOptions = {},
  hardware: Hardware = probeHardware()): TopologyPlan {
  const plan = buildPlan(topology, hardware, modelShape(modelDir, dtype, shapeOptions), source);
  const remoteTensor = plan.ranks.find((r) => typeof r.placement === 'object' && plan.tp > 1);
  if (remoteTensor) {
    throw new TopologyError(source, [
      `stage ${remoteTensor.stage} is placed on node "${(remoteTensor.placement as { node: string }).node}" with tensor_parallel_size ${plan.tp}: ` +
      'tensor groups use shared memory on the leader, so stages on nodes must have tensor_parallel_size 1; place tensor groups on this machine and pipeline stages on nodes',
    ]);
  }
  // Native steps run on Node's libuv pool, one per process: ranks in this process
  // (threads) each hold a pool thread while they wait in their collectives, so
  // more of them than pool threads could wait for peers that never get one.
  const pool = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
  const inProcess = plan.ranks.filter((r) => r.placement === 'thread' || r.placement === 'local').length;
  if (inProcess > 1 && inProcess > pool) {
    throw new TopologyError(source, [
      `${inProcess} ranks in threads of this process, and Node's libuv pool runs ${pool} native steps at once (UV_THREADPOOL_SIZE); ` +
      `use placement "process", or start Node with UV_THREADPOOL_SIZE=${inProcess}`,
    ]);
  }
  return plan;
}

export interface RankGroupSpec {
  children: ChildSpec[];
  /** What the scheduler needs. */
  rankPath: string;
  peerPaths: string[];
  watchPaths: string[];
  pipelineDepth: number;
  /** Names of the nodes that must have joined before the ranks start. */
  nodes: string[];
  summary: string;
}

export function rankGroupSpec(
  plan: TopologyPlan,
  config: LlamaConfig,
  base: { model: string; modelOptions: ModelOptions; faults?: RankFaults; collectiveTimeoutMs?: number },
): RankGroupSpec {
  const children: ChildSpec[] = [];
  const localStages = [...new Set(plan.ranks.filter((r) => typeof r.placement === 'string').map((r) => r.stage))];
  if (plan.tp > 1) {
    children.push({ id: TREE_IDS.tensorGroups, actor: moduleActor(GROUPS, 'TensorGroupsActor', [{ tp: plan.tp, stages: localStages, capacityBytes: tensorGroupCapacity(config) }]) });
  }
  const nodes = [...new Set(plan.ranks.flatMap((r) => (typeof r.placement === 'object' ? [r.placement.node] : [])))];
  // a rank on another node loads the model from the same path: its files must be these
  const checksum = nodes.length ? modelChecksum(base.model) : undefined;
  for (const r of plan.ranks) {
    const options: RankOptions = {
      model: base.model,
      modelOptions: { ...base.modelOptions, threads: r.threads },
      parallel: {
        shard: shardOfRank(r, plan.tp),
        stage: r.stage,
        ...(plan.tp > 1 ? { groupsPath: PATHS.tensorGroups } : {}),
        ...(r.stage < plan.pp - 1 ? { nextPath: rankPath(r.rank + plan.tp) } : {}),
        ...(base.collectiveTimeoutMs !== undefined ? { collectiveTimeoutMs: base.collectiveTimeoutMs } : {}),
      },
      ...(base.faults ? { faults: base.faults } : {}),
      ...(typeof r.placement === 'object' && checksum ? { expectedChecksum: checksum } : {}),
    };
    children.push({ id: rankId(r.rank), actor: moduleActor(RANK, 'RankActor', [options], { placement: r.placement }) });
  }
  return {
    children,
    rankPath: rankPath(0),
    peerPaths: plan.ranks.filter((r) => r.stage === 0 && r.tpRank > 0).map((r) => rankPath(r.rank)),
    watchPaths: plan.ranks.map((r) => rankPath(r.rank)),
    pipelineDepth: plan.pp,
    nodes,
    summary: describePlan(plan),
  };
}
