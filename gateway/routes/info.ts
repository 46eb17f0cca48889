// The small read-only routes: GET /v1/models, /health, /version, /metrics.
import type { KvUsage } from '../../actors/messages/kv-cache.js';
import type { GatewayContext } from '../context.js';
import { StepTimingMetrics } from '../step-timing-metrics.js';

/** The step time split's counters, one set per metrics registry. */
const stepTimingMetrics = new WeakMap<object, StepTimingMetrics>();

/** GET /v1/models, vLLM's model cards (max_model_len included). */
export function modelList(ctx: GatewayContext): unknown {
  const { models } = ctx;
  return {
    object: 'list',
    data: models.names.map((id) => ({
      id,
      object: 'model',
      created: models.created,
      owned_by: 'troupe',
      root: models.root,
      parent: null,
      max_model_len: ctx.engine.maxModelLen,
      permission: [{
        id: `modelperm-${id}`,
        object: 'model_permission',
        created: models.created,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: true,
        allow_search_indices: false,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      }],
    })),
  };
}

export function versionInfo(ctx: GatewayContext): unknown {
  return { version: ctx.version };
}

/** GET /metrics: the gauges are read from the scheduler at each scrape (when it answers), then everything is rendered; it never fails. */
export async function metricsText(ctx: GatewayContext): Promise<string> {
  try {
    const usage: KvUsage = await ctx.engine.troupe.kvUsage();
    ctx.metrics.update(usage);
  } catch {
    // the engine is restarting or gone: the counters still render, the KV gauges keep their last values
  }
  try {
    const registry = ctx.metrics.registry;
    if (!stepTimingMetrics.has(registry)) stepTimingMetrics.set(registry, new StepTimingMetrics(registry, ctx.models.names[0]!));
    stepTimingMetrics.get(registry)!.update(await ctx.engine.troupe.stepTimings());
  } catch {
    // as above: the step timing counters keep their last values
  }
  return ctx.metrics.text();
}
