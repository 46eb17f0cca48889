// Messages the scheduler receives.
import type { ActorRef } from '../../runtime/index.js';
import type { GenerationParams } from '../engine/request-params.js';
import type { StepTimingTotals } from '../engine/step-timings.js';
import type { SchedulerStats } from '../scheduler/scheduler.js';

/** A request as the front hands it over; after a restart, with the tokens it had generated. */
export interface EngineRequest {
  id: string;
  promptTokens: number[];
  outputTokens: number[];
  params: GenerationParams;
  /** Resolved once by the front, so a recompute reproduces seeded samples. */
  seed: number;
  eosTokenIds: number[];
}

export interface SchedulerActorStats extends SchedulerStats {
  steps: number;
  /** The most steps this incarnation had in flight at once (up to the pipeline size). */
  maxInFlight: number;
  /** The engine loop's share of the step time split (the front adds its own). */
  timings: StepTimingTotals;
}

export type SchedulerMessage =
  | { type: 'add'; requests: EngineRequest[] }
  | { type: 'abort'; requestId: string; reason: 'abort' | 'stop' }
  | { type: 'stats'; replyTo: ActorRef<SchedulerActorStats> }
  | { type: 'reset-prefix-cache'; replyTo: ActorRef<boolean> }
  | { type: 'fail'; why: string };
