// The serving benchmark's figures, as vLLM's benchmark_serving reports them:
// request and token throughput over the benchmark's duration, and mean /
// median / p99 of TTFT, TPOT (time per output token after the first), ITL and
// end-to-end latency, in milliseconds, over the successful requests.
import type { RequestOutcome } from './client.js';

export interface Distribution {
  mean: number;
  median: number;
  p99: number;
}

export interface ServingFigures {
  completed: number;
  failed: number;
  durationS: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  ttftMs: Distribution;
  tpotMs: Distribution;
  itlMs: Distribution;
  e2elMs: Distribution;
}

/** Linear-interpolated percentile (numpy's default). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function distribution(values: number[], scale = 1): Distribution {
  if (values.length === 0) return { mean: 0, median: 0, p99: 0 };
  const scaled = values.map((v) => v * scale);
  return { mean: scaled.reduce((a, b) => a + b, 0) / scaled.length, median: percentile(scaled, 50), p99: percentile(scaled, 99) };
}

export function servingFigures(outcomes: RequestOutcome[], durationS: number): ServingFigures {
  const ok = outcomes.filter((o) => o.success);
  const input = ok.reduce((sum, o) => sum + (o.serverPromptTokens ?? o.promptLen), 0);
  const output = ok.reduce((sum, o) => sum + o.outputTokens, 0);
  const tpots = ok.filter((o) => o.outputTokens > 1).map((o) => (o.latency - o.ttft) / (o.outputTokens - 1));
  return {
    completed: ok.length,
    failed: outcomes.length - ok.length,
    durationS,
    totalInputTokens: input,
    totalOutputTokens: output,
    requestThroughput: ok.length / durationS,
    outputThroughput: output / durationS,
    totalTokenThroughput: (input + output) / durationS,
    ttftMs: distribution(ok.map((o) => o.ttft), 1000),
    tpotMs: distribution(tpots, 1000),
    itlMs: distribution(ok.flatMap((o) => o.itl), 1000),
    e2elMs: distribution(ok.map((o) => o.latency), 1000),
  };
}

/** vLLM's result table. */
export function formatFigures(f: ServingFigures, settings: { requestRate: number; maxConcurrency: number | null }): string {
  const row = (label: string, value: string | number) => `${label.padEnd(40)}${String(value).padStart(12)}`;
  const num = (v: number, digits = 2) => v.toFixed(digits);
  const section = (title: string) => title.padStart(25 + title.length / 2, '-').padEnd(52, '-');
  const dist = (name: string, label: string, d: Distribution) => [
    section(name), row(`Mean ${label} (ms):`, num(d.mean)), row(`Median ${label} (ms):`, num(d.median)), row(`P99 ${label} (ms):`, num(d.p99)),
  ];
  return [
    ' Serving Benchmark Result '.padStart(38, '=').padEnd(52, '='),
    row('Successful requests:', f.completed),
    row('Failed requests:', f.failed),
    row('Maximum request concurrency:', settings.maxConcurrency ?? 'None'),
    row('Request rate configured (RPS):', Number.isFinite(settings.requestRate) ? num(settings.requestRate) : 'inf'),
    row('Benchmark duration (s):', num(f.durationS)),
    row('Total input tokens:', f.totalInputTokens),
    row('Total generated tokens:', f.totalOutputTokens),
    row('Request throughput (req/s):', num(f.requestThroughput)),
    row('Output token throughput (tok/s):', num(f.outputThroughput)),
    row('Total Token throughput (tok/s):', num(f.totalTokenThroughput)),
    ...dist('Time to First Token', 'TTFT', f.ttftMs),
    ...dist('Time per Output Token (excl. 1st token)', 'TPOT', f.tpotMs),
    ...dist('Inter-token Latency', 'ITL', f.itlMs),
    ...dist('End-to-end Latency', 'E2EL', f.e2elMs),
    '='.repeat(52),
  ].join('\n');
}
