// One trace per API request, from its arrival to its end: it counts each
// choice's tokens, notes the first token and the finish reasons, and at the
// end writes one log line (with --enable-log-requests) and observes the
// request-level metrics (n, the longest choice):
//
//   INFO ... [troupe] request finished request_id=... route=/v1/chat/completions prompt_tokens=12
//        output_tokens=40 ttft_ms=35.2 total_ms=410.8 finish_reason=stop
//
// Lines hold no prompt or output text.
import type { Logger } from './logger.js';
import type { ChoiceDelta } from './openai-format.js';
import type { RequestMetrics } from './request-metrics.js';

export type RequestOutcome = 'finished' | 'failed' | 'client gone';

export class RequestLog {
  constructor(private readonly logger: Logger | null, private readonly metrics: RequestMetrics) {}

  /** A trace for a request on `route` that arrived at `arrivalMs` (performance.now()) with `choices` choices. */
  start(route: string, requestId: string | undefined, arrivalMs: number, n: number, choices: number): RequestTrace {
    return new RequestTrace(this.logger, this.metrics, route, requestId, arrivalMs, n, choices);
  }
}

export class RequestTrace {
  private readonly tokens: number[];
  private readonly reasons: (string | null)[];
  private firstTokenMs: number | null = null;
  private ended = false;
  private promptTokens = 0;

  constructor(
    private readonly logger: Logger | null,
    private readonly metrics: RequestMetrics,
    readonly route: string,
    readonly requestId: string | undefined,
    private readonly arrivalMs: number,
    private readonly n: number,
    choices: number,
  ) {
    this.tokens = new Array<number>(choices).fill(0);
    this.reasons = new Array<string | null>(choices).fill(null);
  }

  setPromptTokens(count: number): void {
    this.promptTokens = count;
  }

  onDelta(event: ChoiceDelta): void {
    const count = event.delta.tokenIds.length;
    if (count && this.firstTokenMs === null) this.firstTokenMs = performance.now();
    this.tokens[event.index] = (this.tokens[event.index] ?? 0) + count;
    if (event.delta.finishReason) this.reasons[event.index] = event.delta.finishReason;
  }

  /** Once: the log line and the request-level metrics. */
  end(outcome: RequestOutcome, error?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (outcome === 'finished') this.metrics.onApiRequest(this.n, this.tokens);
    if (!this.logger) return;
    const now = performance.now();
    const reasons = [...new Set(this.reasons.map((r) => r ?? 'none'))];
    this.logger.info({
      ...(this.requestId !== undefined ? { request_id: this.requestId } : {}),
      route: this.route,
      prompt_tokens: this.promptTokens,
      output_tokens: this.tokens.reduce((a, b) => a + b, 0),
      ttft_ms: this.firstTokenMs === null ? null : round(this.firstTokenMs - this.arrivalMs),
      total_ms: round(now - this.arrivalMs),
      finish_reason: outcome === 'finished' ? reasons.join(',') : outcome,
      ...(error !== undefined ? { error } : {}),
    }, 'request finished');
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
