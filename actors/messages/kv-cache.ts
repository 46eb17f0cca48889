// Messages the KV-cache manager receives.
import type { ActorRef } from '../../runtime/index.js';
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

export type KvCacheMessage =
  | { type: 'usage'; replyTo: ActorRef<KvUsage> }
  | { type: 'reset-prefix-cache'; replyTo: ActorRef<boolean> };
