// Prometheus metrics under vLLM's names, so vLLM's dashboards (its example
// Grafana dashboard included) work as they are.
//
//   gauges, read from the scheduler (it owns the block pool) when /metrics is scraped:
//     vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc (0..1)
//     and its older name vllm:gpu_cache_usage_perc, vllm:gpu_prefix_cache_hit_rate (0..1),
//     vllm:num_requests_swapped (always 0: Troupe recomputes, it never swaps)
//   vllm:cache_config_info: 1, with the cache's settings as labels
//   counters kept by the engine, advanced to its totals at each scrape:
//     vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total (tokens) and their older
//     names vllm:gpu_prefix_cache_queries_total / _hits_total, vllm:num_preemptions_total
//   counters from the engine front's request events:
//     vllm:prompt_tokens_total, vllm:request_success_total{finished_reason}
//   from the gateway's own deltas:
//     vllm:generation_tokens_total, histograms vllm:time_to_first_token_seconds,
//     vllm:inter_token_latency_seconds and its older name vllm:time_per_output_token_seconds,
//     vllm:e2e_request_latency_seconds
//   the per-request and per-step histograms: request-metrics.ts
//
// vLLM declares its counters without the suffix (vllm:prefix_cache_queries)
// and Python's client exposes them with `_total`; prom-client exposes names
// as given, so the names here carry the `_total` that scrapers actually see.
// Every series has vLLM's labels model_name and engine.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RequestMetrics } from './request-metrics.js';
import type { RequestDelta } from '../actors/front/request-record.js';
import type { KvUsage } from '../actors/messages/kv-cache.js';
import type { RequestEvent } from '../actors/messages/front.js';

// vLLM's buckets
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

type Labels = { model_name: string; engine: string };

/** vllm:cache_config_info's labels (values as vLLM prints them). */
export interface CacheConfigInfo {
  block_size: number;
  num_gpu_blocks: number;
  cache_dtype: string;
  enable_prefix_caching: boolean;
}

export interface GatewayMetricsOptions {
  /** Upper end of the token-count histograms' buckets (default 131072). */
  maxModelLen?: number;
}

/** Times one choice: first token, the gaps between deltas, the whole. */
export interface ChoiceTimer {
  onDelta(delta: RequestDelta): void;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly labels: Labels;
  private readonly running: Gauge<keyof Labels>;
  private readonly waiting: Gauge<keyof Labels>;
  private readonly kvUsage: Gauge<keyof Labels>;
  private readonly prefixQueries: Counter<keyof Labels>;
  private readonly prefixHits: Counter<keyof Labels>;
  private readonly preemptions: Counter<keyof Labels>;
  private readonly promptTokens: Counter<keyof Labels>;
  private readonly generationTokens: Counter<keyof Labels>;
  private readonly requestSuccess: Counter<keyof Labels | 'finished_reason'>;
  private readonly ttft: Histogram<keyof Labels>;
  private readonly itl: Histogram<keyof Labels>;
  private readonly e2e: Histogram<keyof Labels>;
  private readonly tpot: Histogram<keyof Labels>;
  private readonly gpuCacheUsage: Gauge<keyof Labels>;
  private readonly swapped: Gauge<keyof Labels>;
  private readonly prefixHitRate: Gauge<keyof Labels>;
  private readonly gpuPrefixQueries: Counter<keyof Labels>;
  private readonly gpuPrefixHits: Counter<keyof Labels>;
  private readonly cacheConfig: Gauge<string>;
  readonly requests: RequestMetrics;
  /** The engine's totals at the last scrape, to advance the counters by the difference. */
  private readonly seen = { prefixQueries: 0, prefixHits: 0, preemptions: 0 };
  /** Totals since start, for the periodic stats line (engine-stats-log.ts). */
  readonly totals = { promptTokens: 0, generationTokens: 0 };

  constructor(modelName: string, options: GatewayMetricsOptions = {}) {
    this.labels = { model_name: modelName, engine: '0' };
    const labelNames = ['model_name', 'engine'] as const;
    const registers = [this.registry];
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, labelNames, buckets, registers });
    this.running = gauge('vllm:num_requests_running', 'Number of requests in model execution batches.');
    this.waiting = gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.');
    this.kvUsage = gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.');
    this.prefixQueries = counter('vllm:prefix_cache_queries_total', 'Prefix cache queries, in terms of number of queried tokens.');
    this.prefixHits = counter('vllm:prefix_cache_hits_total', 'Prefix cache hits, in terms of number of cached tokens.');
    this.preemptions = counter('vllm:num_preemptions_total', 'Cumulative number of preemptions from the engine.');
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total', help: 'Count of successfully processed requests.',
      labelNames: [...labelNames, 'finished_reason'], registers,
    });
    this.ttft = histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    this.itl = histogram('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    this.e2e = histogram('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', E2E_BUCKETS);
    this.tpot = histogram('vllm:time_per_output_token_seconds', 'Histogram of time per output token in seconds.', ITL_BUCKETS);
    this.gpuCacheUsage = gauge('vllm:gpu_cache_usage_perc', 'KV-cache usage (vllm:kv_cache_usage_perc\'s older name). 1 means 100 percent usage.');
    this.swapped = gauge('vllm:num_requests_swapped', 'Number of requests swapped to CPU (Troupe recomputes preempted requests: always 0).');
    this.prefixHitRate = gauge('vllm:gpu_prefix_cache_hit_rate', 'Prefix cache hit rate: hit tokens / queried tokens since start.');
    this.gpuPrefixQueries = counter('vllm:gpu_prefix_cache_queries_total', 'Prefix cache queries in tokens (vllm:prefix_cache_queries\'s older name).');
    this.gpuPrefixHits = counter('vllm:gpu_prefix_cache_hits_total', 'Prefix cache hits in tokens (vllm:prefix_cache_hits\'s older name).');
    this.cacheConfig = new Gauge({
      name: 'vllm:cache_config_info', help: 'Information of the LLMEngine CacheConfig.',
      labelNames: [...labelNames, 'block_size', 'num_gpu_blocks', 'cache_dtype', 'enable_prefix_caching'], registers,
    });
    this.requests = new RequestMetrics(this.registry, this.labels, options.maxModelLen ?? 131072);
    // series exist from the start (at 0), as dashboards expect
    for (const metric of [this.running, this.waiting, this.kvUsage, this.gpuCacheUsage, this.swapped, this.prefixHitRate]) metric.set(this.labels, 0);
    for (const metric of [this.prefixQueries, this.prefixHits, this.gpuPrefixQueries, this.gpuPrefixHits, this.preemptions, this.promptTokens, this.generationTokens]) metric.inc(this.labels, 0);
    for (const reason of ['stop', 'length', 'abort']) this.requestSuccess.inc({ ...this.labels, finished_reason: reason }, 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** vllm:cache_config_info's series (set once the engine's cache is planned). */
  setCacheConfig(info: CacheConfigInfo): void {
    this.cacheConfig.set({
      ...this.labels, block_size: String(info.block_size), num_gpu_blocks: String(info.num_gpu_blocks),
      cache_dtype: info.cache_dtype, enable_prefix_caching: info.enable_prefix_caching ? 'True' : 'False',
    }, 1);
  }

  /** Sets the gauges and advances the engine's counters from a KV-cache usage report. */
  update(usage: KvUsage): void {
    this.running.set(this.labels, usage.running);
    this.waiting.set(this.labels, usage.waiting);
    this.kvUsage.set(this.labels, usage.usage);
    this.gpuCacheUsage.set(this.labels, usage.usage);
    this.prefixHitRate.set(this.labels, usage.prefixQueries > 0 ? usage.prefixHits / usage.prefixQueries : 0);
    const { prefixQueries, prefixHits } = this.seen;
    this.advance(this.prefixQueries, 'prefixQueries', usage.prefixQueries);
    this.advance(this.prefixHits, 'prefixHits', usage.prefixHits);
    this.advance(this.preemptions, 'preemptions', usage.preemptions);
    // the older names advance by the same amounts
    this.gpuPrefixQueries.inc(this.labels, this.seen.prefixQueries >= prefixQueries ? this.seen.prefixQueries - prefixQueries : this.seen.prefixQueries);
    this.gpuPrefixHits.inc(this.labels, this.seen.prefixHits >= prefixHits ? this.seen.prefixHits - prefixHits : this.seen.prefixHits);
  }

  onRequestEvent(event: RequestEvent): void {
    if (event.type === 'submitted') {
      this.promptTokens.inc(this.labels, event.promptTokens);
      this.totals.promptTokens += event.promptTokens;
    } else if (event.type === 'finished') {
      this.requestSuccess.inc({ ...this.labels, finished_reason: event.reason });
    }
    this.requests.onRequestEvent(event);
  }

  /** A timer for one choice of a request that arrived at `arrivalMs` (performance.now()). */
  timer(arrivalMs: number): ChoiceTimer {
    let last: number | null = null;
    return {
      onDelta: (delta) => {
        const now = performance.now();
        if (delta.tokenIds.length) {
          this.generationTokens.inc(this.labels, delta.tokenIds.length);
          this.totals.generationTokens += delta.tokenIds.length;
          if (last === null) {
            this.ttft.observe(this.labels, (now - arrivalMs) / 1000);
          } else {
            this.itl.observe(this.labels, (now - last) / 1000);
            this.tpot.observe(this.labels, (now - last) / 1000);
          }
          last = now;
        }
        if (delta.finishReason) this.e2e.observe(this.labels, (now - arrivalMs) / 1000);
      },
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  private advance(counter: Counter<keyof Labels>, key: keyof GatewayMetrics['seen'], total: number): void {
    const before = this.seen[key];
    // a total below the last one means the engine restarted its count
    const delta = total >= before ? total - before : total;
    if (delta > 0) counter.inc(this.labels, delta);
    this.seen[key] = total;
  }
}
