// The engine's step time split (actors/engine/step-timings.ts) as Prometheus
// counters, advanced to the engine's totals at each scrape:
//
//   troupe:engine_steps_total, troupe:engine_step_rows_total
//   troupe:engine_step_seconds_total{part}   part: step (the wall), native,
//                                            scheduler, front, detokenizer, gateway
//
// A client (troupe bench serve) scrapes before and after a run and divides.
import { Counter, type Registry } from 'prom-client';
import type { StepTimingTotals, TimedSegment } from '../actors/engine/step-timings.js';

const PARTS: Record<TimedSegment, string> = {
  stepMs: 'step', nativeMs: 'native', schedulerMs: 'scheduler', frontMs: 'front', detokenizerMs: 'detokenizer', gatewayMs: 'gateway',
};

export class StepTimingMetrics {
  private readonly steps: Counter<'model_name'>;
  private readonly rows: Counter<'model_name'>;
  private readonly seconds: Counter<'model_name' | 'part'>;
  private seen: StepTimingTotals | undefined;

  constructor(registry: Registry, private readonly modelName: string) {
    const registers = [registry];
    this.steps = new Counter({ name: 'troupe:engine_steps_total', help: 'Engine steps run.', labelNames: ['model_name'], registers });
    this.rows = new Counter({ name: 'troupe:engine_step_rows_total', help: 'Sequences over all engine steps.', labelNames: ['model_name'], registers });
    this.seconds = new Counter({
      name: 'troupe:engine_step_seconds_total', help: 'Engine step wall time (part="step") and where it went.', labelNames: ['model_name', 'part'], registers,
    });
  }

  /** Advances the counters to the engine's totals (a total below the last one: the engine restarted its count). */
  update(totals: StepTimingTotals): void {
    const labels = { model_name: this.modelName };
    const before = this.seen;
    const delta = (key: keyof StepTimingTotals) => {
      const last = before?.[key] ?? 0;
      return totals[key] >= last ? totals[key] - last : totals[key];
    };
    this.steps.inc(labels, delta('steps'));
    this.rows.inc(labels, delta('rows'));
    for (const [key, part] of Object.entries(PARTS) as [TimedSegment, string][]) this.seconds.inc({ ...labels, part }, delta(key) / 1000);
    this.seen = { ...totals };
  }
}

/** Reads the counters back from a /metrics text; undefined when the server has none (not a troupe server). */
export function parseStepTimings(text: string): StepTimingTotals | undefined {
  const value = (name: string, part?: string): number | undefined => {
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{')) continue;
      if (part !== undefined && !line.includes(`part="${part}"`)) continue;
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return undefined;
  };
  const steps = value('troupe:engine_steps_total');
  if (steps === undefined) return undefined;
  const totals: StepTimingTotals = {
    steps, rows: value('troupe:engine_step_rows_total') ?? 0,
    stepMs: 0, nativeMs: 0, schedulerMs: 0, frontMs: 0, detokenizerMs: 0, gatewayMs: 0,
  };
  for (const [key, part] of Object.entries(PARTS) as [TimedSegment, string][]) totals[key] = (value('troupe:engine_step_seconds_total', part) ?? 0) * 1000;
  return totals;
}
