// The periodic engine stats line, as vLLM's:
//
//   INFO ... [troupe] Avg prompt throughput: 120.3 tokens/s, Avg generation throughput: 48.1 tokens/s,
//        Running: 3 reqs, Waiting: 0 reqs, KV cache usage: 12.5%, Prefix cache hit rate: 40.0%
//
// Throughputs are over the interval since the last line; the hit rate is
// over the interval's queries (0 when none). An idle interval (nothing run,
// nothing waiting, no tokens) logs at debug level, as vLLM does.
import type { KvUsage } from '../actors/messages/kv-cache.js';
import type { Logger } from './logger.js';

export interface StatsSample {
  /** performance.now() */
  atMs: number;
  promptTokens: number;
  generationTokens: number;
  usage: Pick<KvUsage, 'running' | 'waiting' | 'usage' | 'prefixQueries' | 'prefixHits'>;
}

/** A plain class: `line()` compares a sample with the one before. */
export class EngineStats {
  private last: StatsSample | null = null;

  /** The line for the interval that ends at `sample` and whether it is worth info level; null for the first sample. */
  line(sample: StatsSample): { text: string; idle: boolean; fields: Record<string, number> } | null {
    const last = this.last;
    this.last = sample;
    if (!last) return null;
    const seconds = Math.max(1e-9, (sample.atMs - last.atMs) / 1000);
    const prompt = Math.max(0, sample.promptTokens - last.promptTokens) / seconds;
    const generation = Math.max(0, sample.generationTokens - last.generationTokens) / seconds;
    const queries = sample.usage.prefixQueries - last.usage.prefixQueries;
    const hits = sample.usage.prefixHits - last.usage.prefixHits;
    const hitRate = queries > 0 ? Math.max(0, hits) / queries : 0;
    const { running, waiting, usage } = sample.usage;
    const idle = prompt === 0 && generation === 0 && running === 0 && waiting === 0;
    const text = `Avg prompt throughput: ${prompt.toFixed(1)} tokens/s, Avg generation throughput: ${generation.toFixed(1)} tokens/s, ` +
      `Running: ${running} reqs, Waiting: ${waiting} reqs, KV cache usage: ${(usage * 100).toFixed(1)}%, Prefix cache hit rate: ${(hitRate * 100).toFixed(1)}%`;
    return { text, idle, fields: { prompt_throughput: prompt, generation_throughput: generation, running, waiting, kv_cache_usage: usage, prefix_cache_hit_rate: hitRate } };
  }
}

/** Samples every `intervalS` seconds and logs the line; stop() ends it. The timer does not keep the process alive. */
export class EngineStatsLog {
  private readonly stats = new EngineStats();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly sample: () => Promise<StatsSample>,
    private readonly intervalS: number,
    /** Also give the figures as fields (JSON format; text lines have them in the message). */
    private readonly structured = false,
  ) {}

  start(): this {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalS * 1000);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async tick(): Promise<void> {
    let sample: StatsSample;
    try {
      sample = await this.sample();
    } catch {
      return; // the engine is restarting: no line this time
    }
    const line = this.stats.line(sample);
    if (!line || !this.timer) return;
    const fields = this.structured ? line.fields : {};
    if (line.idle) this.logger.debug(fields, line.text);
    else this.logger.info(fields, line.text);
  }
}
