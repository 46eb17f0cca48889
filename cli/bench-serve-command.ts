// `troupe bench serve`: the serving benchmark (bench/serving/) against any
// OpenAI-compatible server. Asks the server for its model, builds the random
// dataset, checks one request end to end, runs, prints vLLM's table (or JSON
// with --json) and writes a record under bench/results/.
import { writeRecord } from '../bench/record.js';
import { sendRequest, type TargetServer } from '../bench/serving/client.js';
import { loadTokenizer, randomDataset } from '../bench/serving/dataset.js';
import { formatFigures } from '../bench/serving/metrics.js';
import { runServing } from '../bench/serving/run.js';
import { diffTimings, timingShares, type StepShares, type StepTimingTotals } from '../actors/engine/step-timings.js';
import type { BenchServeFlags } from './bench.js';
import { parseStepTimings } from '../gateway/step-timing-metrics.js';

export async function runBenchServe(flags: BenchServeFlags): Promise<number> {
  try {
    const settings = parseSettings(flags);
    const base = (flags.baseUrl ?? `http://${flags.host}:${flags.port}`).replace(/\/+$/, '');
    const apiKey = flags.apiKey ?? process.env['OPENAI_API_KEY'];
    const model = flags.model ?? (await firstModel(base, apiKey));
    const server: TargetServer = { url: `${base}${flags.endpoint}`, model, ignoreEos: Boolean(flags.ignoreEos), ...(apiKey ? { apiKey } : {}) };
    const log = (line: string) => (flags.json ? console.error(line) : console.log(line));

    const tokenizer = settings.format === 'text' ? loadTokenizer(flags.tokenizer) : undefined;
    const requests = randomDataset({
      numPrompts: settings.numPrompts, inputLen: settings.inputLen, outputLen: settings.outputLen, rangeRatio: settings.rangeRatio,
      seed: settings.seed, format: settings.format, ...(tokenizer ? { tokenizer } : {}),
    });
    log(`benchmarking ${server.url} (model ${model}): ${settings.numPrompts} random prompts of ~${settings.inputLen} tokens, ${settings.outputLen} out, ` +
      `rate ${Number.isFinite(settings.requestRate) ? `${settings.requestRate}/s` : 'inf'}, max concurrency ${settings.maxConcurrency ?? 'none'}`);
    const probe = await sendRequest(server, { ...requests[0]!, outputLen: Math.min(2, requests[0]!.outputLen) });
    if (!probe.success) throw new Error(`the test request failed: ${probe.error}`);

    const timingsBefore = await scrapeStepTimings(base);
    const { figures } = await runServing(server, requests, {
      requestRate: settings.requestRate, burstiness: settings.burstiness, maxConcurrency: settings.maxConcurrency, seed: settings.seed, progress: flags.progress,
    });
    const timingsAfter = timingsBefore ? await scrapeStepTimings(base) : undefined;
    // a troupe server reports where its step time went (gateway/step-timing-metrics.ts); this run's share of it
    const engineSteps = timingsBefore && timingsAfter ? timingShares(diffTimings(timingsAfter, timingsBefore)) : undefined;
    const result = {
      backend: 'openai-completions', url: server.url, model, ...settings,
      requestRate: Number.isFinite(settings.requestRate) ? settings.requestRate : 'inf',
      ...figures,
      ...(engineSteps ? { engineSteps } : {}),
    };
    if (flags.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(formatFigures(figures, settings));
      if (engineSteps) console.log(formatStepShares(engineSteps));
    }
    if (flags.record) log(`record: ${writeRecord('serve', result)}`);
    return figures.failed > 0 && figures.completed === 0 ? 1 : 0;
  } catch (error) {
    console.error(`troupe bench serve: ${(error as Error).message}`);
    return 1;
  }
}

function parseSettings(flags: BenchServeFlags) {
  const int = (name: string, text: string, min: number) => {
    const v = Number(text);
    if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got "${text}"`);
    return v;
  };
  const rate = flags.requestRate === 'inf' ? Number.POSITIVE_INFINITY : Number(flags.requestRate);
  if (!(rate > 0)) throw new Error(`--request-rate must be a positive number or inf, got "${flags.requestRate}"`);
  const burstiness = Number(flags.burstiness);
  if (!(burstiness > 0)) throw new Error(`--burstiness must be positive, got "${flags.burstiness}"`);
  const rangeRatio = Number(flags.rangeRatio);
  if (!(rangeRatio >= 0 && rangeRatio < 1)) throw new Error(`--range-ratio must be in [0, 1), got "${flags.rangeRatio}"`);
  if (flags.promptFormat !== 'text' && flags.promptFormat !== 'tokens') throw new Error(`--prompt-format must be text or tokens, got "${flags.promptFormat}"`);
  return {
    inputLen: int('--input-len', flags.inputLen, 1),
    outputLen: int('--output-len', flags.outputLen, 1),
    numPrompts: int('--num-prompts', flags.numPrompts, 1),
    rangeRatio,
    requestRate: rate,
    burstiness,
    maxConcurrency: flags.maxConcurrency !== undefined ? int('--max-concurrency', flags.maxConcurrency, 1) : null,
    seed: int('--seed', flags.seed, 0),
    format: flags.promptFormat as 'text' | 'tokens',
  };
}

/** The server's step time counters, or undefined when it has none (any OpenAI server but troupe). */
async function scrapeStepTimings(base: string): Promise<StepTimingTotals | undefined> {
  try {
    const response = await fetch(`${base}/metrics`);
    return response.ok ? parseStepTimings(await response.text()) : undefined;
  } catch {
    return undefined;
  }
}

function formatStepShares(s: StepShares): string {
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  return [
    `engine steps: ${s.steps}, mean ${s.meanRows.toFixed(1)} rows, mean step ${s.meanStepMs.toFixed(2)} ms (native ${s.meanNativeMs.toFixed(2)} ms)`,
    `share of step wall: native ${pct(s.native)}, scheduler ${pct(s.scheduler)}, front ${pct(s.front)}, ` +
      `detokenizer ${pct(s.detokenizer)}, gateway ${pct(s.gateway)}; engine overhead ${pct(s.engineOverhead)}`,
  ].join('\n');
}

async function firstModel(base: string, apiKey: string | undefined): Promise<string> {
  let response: Response;
  try {
    response = await fetch(`${base}/v1/models`, { headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {} });
  } catch (error) {
    throw new Error(`cannot reach ${base}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`);
  }
  if (!response.ok) throw new Error(`GET ${base}/v1/models answered ${response.status}; pass --model`);
  const list = (await response.json()) as { data?: { id?: string }[] };
  const id = list.data?.[0]?.id;
  if (!id) throw new Error(`${base}/v1/models lists no model; pass --model`);
  return id;
}
