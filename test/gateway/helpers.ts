// A real gateway on 127.0.0.1 (a free port chosen by the OS) over the
// generated tiny model (or another model directory), torn down by the test: listen socket and connections
// closed, engine shut down.
import { Troupe, type TroupeOptions } from '../../actors/engine/troupe.js';
import { GatewayServer, type GatewayOptions } from '../../gateway/server.js';
import { generatedModel } from '../models/helpers.js';

export const TEST_MODEL_NAME = 'tiny-test';

export interface TestGateway {
  server: GatewayServer;
  troupe: Troupe;
  url: string;
  port: number;
  modelDir: string;
  close(): Promise<void>;
}

export async function startGateway(options: { modelDir?: string; engine?: Partial<TroupeOptions>; gateway?: Partial<GatewayOptions> } = {}): Promise<TestGateway> {
  const modelDir = options.modelDir ?? generatedModel('tiny', 7);
  const troupe = await Troupe.start({ model: modelDir, kvCacheMemory: '16MiB', maxModelLen: 2048, threads: 1, log: () => {}, ...options.engine });
  let server: GatewayServer;
  try {
    server = await GatewayServer.start(troupe, {
      host: '127.0.0.1', port: 0, modelDir, servedModelNames: [TEST_MODEL_NAME],
      maxNumSeqs: options.engine?.maxNumSeqs ?? 64, maxPendingRequests: 256, maxRequestBytes: 1 << 20,
      version: 'test', log: () => {},
      ...options.gateway,
    });
  } catch (error) {
    await troupe.shutdown();
    throw error;
  }
  let closed = false;
  return {
    server, troupe, modelDir,
    port: server.port,
    url: `http://127.0.0.1:${server.port}`,
    close: async () => {
      if (closed) return;
      closed = true;
      server.close();
      await troupe.shutdown();
    },
  };
}

/** Parses Prometheus text into { "name{labels}": value } and sums by bare name. */
export function parseMetrics(text: string): { series: Map<string, number>; value(name: string, labels?: Record<string, string>): number } {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return {
    series,
    value(name, labels = {}) {
      let sum = 0;
      for (const [key, v] of series) {
        const bare = key.includes('{') ? key.slice(0, key.indexOf('{')) : key;
        if (bare !== name) continue;
        if (Object.entries(labels).every(([k, lv]) => key.includes(`${k}="${lv}"`))) sum += v;
      }
      return sum;
    },
  };
}

export async function scrape(url: string) {
  const response = await fetch(`${url}/metrics`);
  return parseMetrics(await response.text());
}

/** Polls `check` (every 20 ms, up to `timeoutMs`) until it returns true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The engine is idle: nothing running or waiting, no KV block in use (as /metrics reports it). */
export async function engineIdle(url: string): Promise<boolean> {
  const m = await scrape(url);
  return m.value('vllm:num_requests_running') === 0 && m.value('vllm:num_requests_waiting') === 0 && m.value('vllm:kv_cache_usage_perc') === 0;
}
