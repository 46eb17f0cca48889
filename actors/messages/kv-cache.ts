// The KV cache's usage as the API reports it: the plan made before the ranks
// started (kv-plan.ts) and the scheduler's block pool now.
import type { KvPlan } from '../kv-cache/kv-plan.js';

export interface KvUsage {
  plan: KvPlan;
  usage: number;
  running: number;
  waiting: number;
  prefixQueries: number;
  prefixHits: number;
  preemptions: number;
}
