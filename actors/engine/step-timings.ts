// Where an engine step's wall time goes, summed over the engine's life.
//
//   step wall    from the scheduler's plan to the step's tokens applied
//                (the engine loop: consecutive steps run back to back)
//   ├─ native    the rank's native step, call to result, as the rank saw it
//   ├─ scheduler schedule(), building the rank's message, update()
//   └─ (rest)    crossings between the actors, queueing behind other work
//                on the same thread
//
//   front        turning a step's tokens into deltas and sending them to
//                the clients, detokenizer excluded
//   detokenizer  waiting for the detokenizer's replies
//   gateway      the API's client handing the deltas to their subscribers
//                (the gateway's SSE / WebSocket writes)
//
// The front, detokenizer and gateway run beside the next step, so their
// shares are of the step wall, not parts of it. Engine overhead is the share
// of the step wall outside the native step.

export interface StepTimingTotals {
  steps: number;
  /** Sequences over all steps (rows of the batch). */
  rows: number;
  stepMs: number;
  nativeMs: number;
  schedulerMs: number;
  frontMs: number;
  detokenizerMs: number;
  gatewayMs: number;
}

export type TimedSegment = Exclude<keyof StepTimingTotals, 'steps' | 'rows'>;

export function emptyTimings(): StepTimingTotals {
  return { steps: 0, rows: 0, stepMs: 0, nativeMs: 0, schedulerMs: 0, frontMs: 0, detokenizerMs: 0, gatewayMs: 0 };
}

/** Adds `b` into `a`, field by field. */
export function addTimings(a: StepTimingTotals, b: Partial<StepTimingTotals>): StepTimingTotals {
  for (const key of Object.keys(a) as (keyof StepTimingTotals)[]) a[key] += b[key] ?? 0;
  return a;
}

/** `after - before`, field by field (a run's share of two scrapes). */
export function diffTimings(after: StepTimingTotals, before: StepTimingTotals): StepTimingTotals {
  const out = emptyTimings();
  for (const key of Object.keys(out) as (keyof StepTimingTotals)[]) out[key] = after[key] - before[key];
  return out;
}

export interface StepShares {
  steps: number;
  meanRows: number;
  meanStepMs: number;
  meanNativeMs: number;
  native: number;
  scheduler: number;
  front: number;
  detokenizer: number;
  gateway: number;
  engineOverhead: number;
}

/** Each segment's share of the step wall, and the engine overhead (1 - native share). */
export function timingShares(t: StepTimingTotals): StepShares {
  const of = (ms: number) => (t.stepMs > 0 ? ms / t.stepMs : 0);
  return {
    steps: t.steps,
    meanRows: t.steps > 0 ? t.rows / t.steps : 0,
    meanStepMs: t.steps > 0 ? t.stepMs / t.steps : 0,
    meanNativeMs: t.steps > 0 ? t.nativeMs / t.steps : 0,
    native: of(t.nativeMs),
    scheduler: of(t.schedulerMs),
    front: of(t.frontMs),
    detokenizer: of(t.detokenizerMs),
    gateway: of(t.gatewayMs),
    engineOverhead: t.stepMs > 0 ? 1 - t.nativeMs / t.stepMs : 0,
  };
}

/** A clock in milliseconds (performance.now: monotonic, sub-millisecond). */
export function nowMs(): number {
  return performance.now();
}
