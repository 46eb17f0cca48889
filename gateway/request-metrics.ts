// The per-request and per-step families of vLLM's metrics, fed by the engine
// front's request events (actors/messages/front.ts) and by the gateway's
// request traces:
//
//   at each finished engine request (one per choice):
//     vllm:request_queue_time_seconds       submitted -> first admitted by the scheduler
//     vllm:request_prefill_time_seconds     first admitted -> first token
//     vllm:request_decode_time_seconds      first token -> finished
//     vllm:request_inference_time_seconds   first admitted -> finished
//     vllm:request_time_per_output_token_seconds   decode time / (output tokens - 1)
//     vllm:request_prompt_tokens, vllm:request_generation_tokens, vllm:request_params_max_tokens
//   at each finished API request:      vllm:request_params_n, vllm:request_max_num_generation_tokens
//   at each engine step:               vllm:iteration_tokens_total (tokens in the step)
//
// A request aborted before it was admitted waited all its life (queue time
// = its whole time) and has no prefill / decode / inference time; one aborted
// before its first token has no prefill or decode time.
import { Histogram, type Registry } from 'prom-client';
import type { RequestEvent } from '../actors/messages/front.js';

// vLLM's request_latency_buckets
const REQUEST_LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
const TPOT_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const N_BUCKETS = [1, 2, 5, 10, 20];
const ITERATION_TOKEN_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

/** vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to `max`. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let exponent = 0; ; exponent++) {
    for (const mantissa of [1, 2, 5]) {
      const value = mantissa * 10 ** exponent;
      if (value > max) return out;
      out.push(value);
    }
  }
}

type Labels = { model_name: string; engine: string };

export class RequestMetrics {
  private readonly queueTime: Histogram<keyof Labels>;
  private readonly prefillTime: Histogram<keyof Labels>;
  private readonly decodeTime: Histogram<keyof Labels>;
  private readonly inferenceTime: Histogram<keyof Labels>;
  private readonly requestTpot: Histogram<keyof Labels>;
  private readonly promptTokens: Histogram<keyof Labels>;
  private readonly generationTokens: Histogram<keyof Labels>;
  private readonly maxTokensParam: Histogram<keyof Labels>;
  private readonly nParam: Histogram<keyof Labels>;
  private readonly maxGenerationTokens: Histogram<keyof Labels>;
  private readonly iterationTokens: Histogram<keyof Labels>;

  constructor(registry: Registry, private readonly labels: Labels, maxModelLen: number) {
    const labelNames = ['model_name', 'engine'] as const;
    const histogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, labelNames, buckets, registers: [registry] });
    const tokenBuckets = buckets125(Math.max(1, maxModelLen));
    this.queueTime = histogram('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', REQUEST_LATENCY_BUCKETS);
    this.prefillTime = histogram('vllm:request_prefill_time_seconds', 'Histogram of time spent in PREFILL phase for request.', REQUEST_LATENCY_BUCKETS);
    this.decodeTime = histogram('vllm:request_decode_time_seconds', 'Histogram of time spent in DECODE phase for request.', REQUEST_LATENCY_BUCKETS);
    this.inferenceTime = histogram('vllm:request_inference_time_seconds', 'Histogram of time spent in RUNNING phase for request.', REQUEST_LATENCY_BUCKETS);
    this.requestTpot = histogram('vllm:request_time_per_output_token_seconds', 'Histogram of time_per_output_token_seconds per request.', TPOT_BUCKETS);
    this.promptTokens = histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokenBuckets);
    this.generationTokens = histogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', tokenBuckets);
    this.maxTokensParam = histogram('vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', tokenBuckets);
    this.nParam = histogram('vllm:request_params_n', 'Histogram of the n request parameter.', N_BUCKETS);
    this.maxGenerationTokens = histogram('vllm:request_max_num_generation_tokens', 'Histogram of maximum number of requested generation tokens.', tokenBuckets);
    this.iterationTokens = histogram('vllm:iteration_tokens_total', 'Histogram of number of tokens per engine_step.', ITERATION_TOKEN_BUCKETS);
  }

  onRequestEvent(event: RequestEvent): void {
    if (event.type === 'step') this.iterationTokens.observe(this.labels, event.numBatchedTokens);
    else if (event.type === 'finished') this.onFinished(event);
  }

  /** An API request ended: its n, and the most tokens any of its choices generated. */
  onApiRequest(n: number, choiceTokens: number[]): void {
    this.nParam.observe(this.labels, n);
    this.maxGenerationTokens.observe(this.labels, Math.max(0, ...choiceTokens));
  }

  private onFinished(event: Extract<RequestEvent, { type: 'finished' }>): void {
    if (event.promptTokens !== undefined) this.promptTokens.observe(this.labels, event.promptTokens);
    this.generationTokens.observe(this.labels, event.outputTokens);
    if (event.maxTokens) this.maxTokensParam.observe(this.labels, event.maxTokens);
    const times = event.times;
    if (!times) return;
    const seconds = (from: number, to: number) => Math.max(0, to - from) / 1000;
    if (times.scheduledMs === undefined) {
      this.queueTime.observe(this.labels, seconds(times.submittedMs, times.finishedMs));
      return;
    }
    this.queueTime.observe(this.labels, seconds(times.submittedMs, times.scheduledMs));
    this.inferenceTime.observe(this.labels, seconds(times.scheduledMs, times.finishedMs));
    if (times.firstTokenMs === undefined) return;
    this.prefillTime.observe(this.labels, seconds(times.scheduledMs, times.firstTokenMs));
    const decode = seconds(times.firstTokenMs, times.finishedMs);
    this.decodeTime.observe(this.labels, decode);
    if (event.outputTokens > 1) this.requestTpot.observe(this.labels, decode / (event.outputTokens - 1));
  }
}
