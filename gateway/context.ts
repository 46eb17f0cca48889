// What every route shares: the engine client, admission, metrics, the served
// model's names and defaults, and the server's limits.
import type { Admission } from './admission.js';
import type { EngineClient } from './engine-client.js';
import { ApiError } from './errors.js';
import type { GatewayMetrics } from './metrics.js';
import type { RequestLog } from './request-log.js';
import type { SamplingDefaults } from './sampling-defaults.js';
import type { ToolCallOptions } from './tool-calls.js';

export interface GatewayLimits {
  /** Bodies over this many bytes get a 413. */
  maxRequestBytes: number;
  /** Bytes a streamed response may queue for a slow client before it is disconnected. */
  maxQueuedBytes: number;
}

export class ServedModels {
  /** `names[0]` is the one responses carry when a request names none. */
  constructor(readonly names: string[], readonly root: string, readonly created = Math.floor(Date.now() / 1000)) {
    if (names.length === 0) throw new RangeError('a served model needs at least one name');
  }

  /** The name to answer with, or a 404 for a model this server does not serve (vLLM's wording). */
  resolve(requested: string | null | undefined): string {
    if (requested === undefined || requested === null || requested === '') return this.names[0]!;
    if (this.names.includes(requested)) return requested;
    return throwNotFound(requested);
  }
}

function throwNotFound(model: string): never {
  throw new ApiError(404, `The model \`${model}\` does not exist.`, 'model');
}

/** Seeds of requests that bring none: random, or a reproducible sequence under --seed (as vLLM's --seed). */
export class SeedSource {
  private state: bigint | null;

  constructor(seed?: number) {
    this.state = seed === undefined ? null : BigInt.asUintN(64, BigInt(seed));
  }

  next(): number {
    if (this.state === null) return Math.floor(Math.random() * 2 ** 52);
    // splitmix64, top 52 bits
    this.state = BigInt.asUintN(64, this.state + 0x9e3779b97f4a7c15n);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return Number((z ^ (z >> 31n)) >> 12n);
  }
}

export interface GatewayContext {
  engine: EngineClient;
  admission: Admission;
  metrics: GatewayMetrics;
  models: ServedModels;
  defaults: SamplingDefaults;
  seeds: SeedSource;
  limits: GatewayLimits;
  /** --enable-auto-tool-choice, --tool-call-parser. */
  toolCalls: ToolCallOptions;
  version: string;
  /** Request traces: log lines (--enable-log-requests) and request-level metrics. */
  requestLog?: RequestLog;
}
