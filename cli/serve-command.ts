// `troupe serve [MODEL_DIR] [--topology FILE] [flags]`: resolves the model
// (the embedded default when none is given), the topology and the flags,
// starts the engine with progress bars, starts the gateway, prints where it
// listens, and on SIGTERM / SIGINT drains and exits 0:
//
//   stop accepting (listen socket closed, new requests 503) -> requests in
//   flight finish for up to --shutdown-timeout s -> the rest are aborted ->
//   connections closed -> engine shut down -> exit 0
import { TOOL_CALL_PARSERS, type ToolCallOptions } from '../gateway/tool-calls.js';
import { checkJoinToken, readJoinToken } from '../runtime/node/join-token.js';
import { readFileSync } from 'node:fs';
import { Troupe, DEFAULT_MAX_NUM_SEQS, type TroupeOptions } from '../actors/engine/troupe.js';
import { Checkpoint } from '../models/checkpoint.js';
import { parseByteSize } from '../models/make-model.js';
import { probeHardware } from '../topology/hardware.js';
import { loadTopology, topologyFromFlags } from '../topology/load.js';
import { modelShape, type ModelShapeOptions } from '../topology/model-shape.js';
import { buildPlan, describePlan } from '../topology/plan.js';
import { planRanks } from '../actors/engine/rank-group.js';
import type { Topology } from '../topology/schema.js';
import { isHubId, resolveHubModel } from '../models/hub.js';
import { DEFAULT_MODEL, ensureDefaultModel } from './default-model.js';
import { LoadingProgress } from './loading-progress.js';
import { describeDefaults, samplingDefaults } from '../gateway/sampling-defaults.js';
import type { ServeFlags } from './serve.js';
import { GatewayServer } from '../gateway/server.js';
import { DEFAULT_CORS, parseListFlag, type CorsOptions } from '../gateway/cors.js';
import { createLogger, parseLogFormat, parseLogLevel, type LogFormat, type LogLevel } from '../gateway/logger.js';
import { vllmFlagNotices } from './vllm-flags.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export class ServeFlagError extends Error {}

/** Everything `troupe serve` decided before starting anything. */
export interface ServeConfig {
  modelDir: string;
  embeddedDefault: boolean;
  servedModelNames: string[];
  host: string;
  port: number;
  engine: TroupeOptions;
  topology: Topology;
  topologySource: string;
  apiKeys: string[];
  generationConfig: 'auto' | 'vllm';
  seed?: number;
  maxRequestBytes: number;
  maxPendingRequests: number;
  shutdownTimeoutS: number;
  cors: CorsOptions;
  requestIdHeaders: boolean;
  log: ServeLogConfig;
  /** One line per vLLM flag given that Troupe accepts and ignores (vllm-flags.ts). */
  vllmFlagWarnings: string[];
  toolCalls: ToolCallOptions;
}

export interface ServeLogConfig {
  level: LogLevel;
  format: LogFormat;
  /** --enable-log-requests */
  requests: boolean;
  /** Seconds between engine stats lines; 0: none (--disable-log-stats). */
  statsIntervalS: number;
}

/** Runs the server until a signal; returns the exit code, or null when the process exits by itself. */
export async function runServe(model: string | undefined, flags: ServeFlags): Promise<number | null> {
  let config: ServeConfig;
  const progress = new LoadingProgress();
  try {
    // a hub id (org/name) is downloaded into, or found in, the Hugging Face cache first
    const modelDir = model !== undefined && isHubId(model) ? await resolveHubModel(model, { ...(flags.revision ? { revision: flags.revision } : {}) }) : model;
    config = resolveServeConfig(modelDir, flags);
    if (model !== undefined && modelDir !== model && !flags.servedModelName) config.servedModelNames = [model];
  } catch (error) {
    console.error(`troupe serve: ${(error as Error).message}`);
    return 2;
  }
  const logger = createLogger({ level: config.log.level, format: config.log.format });
  // lines for the operator: as they are in text format, as log records in JSON format
  const say = (line: string) => (config.log.format === 'json' ? logger.info(line) : console.log(line));
  for (const warning of config.vllmFlagWarnings) logger.warn(warning);
  const startupLines: string[] = [];
  let troupe: Troupe;
  let server: GatewayServer;
  let defaults: ReturnType<typeof samplingDefaults>;
  try {
    const checkpoint = Checkpoint.open(config.modelDir);
    await progress.readWeights(checkpoint.files);
    troupe = await progress.step('engine', () => Troupe.start({ ...config.engine, log: (line) => startupLines.push(line) }));
    defaults = samplingDefaults(checkpoint.generationConfig.raw, config.generationConfig);
    server = await GatewayServer.start(troupe, {
      host: config.host, port: config.port, modelDir: config.modelDir, servedModelNames: config.servedModelNames,
      apiKeys: config.apiKeys, maxNumSeqs: config.engine.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS,
      maxPendingRequests: config.maxPendingRequests, maxRequestBytes: config.maxRequestBytes,
      defaults, version: pkg.version, ...(config.seed !== undefined ? { seed: config.seed } : {}),
      cors: config.cors, requestIdHeaders: config.requestIdHeaders,
      logger, logRequests: config.log.requests, statsIntervalS: config.log.statsIntervalS, structuredStats: config.log.format === 'json',
      cacheConfig: { cacheDtype: config.engine.kvCacheDtype ?? 'auto', enablePrefixCaching: config.engine.enablePrefixCaching ?? true },
      toolCalls: config.toolCalls,
    });
    // xgrammar's tokenizer info, before the first request that needs it
    await troupe.grammars();
    progress.stop();
  } catch (error) {
    progress.stop();
    console.error(`troupe serve: ${(error as Error).message}`);
    return 1;
  }
  // the handlers are in place before the banner says where the server listens (a launcher may signal as soon as it reads it)
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      say(`troupe serve: ${signal}: no new requests; waiting up to ${config.shutdownTimeoutS}s for ${server.ctx.admission.admitted} in flight`);
      void (async () => {
        const finished = await server.drain(config.shutdownTimeoutS * 1000);
        if (!finished) say('troupe serve: shutdown timeout reached; the remaining requests were aborted');
        server.close();
        await troupe.shutdown();
        say('troupe serve: stopped');
        resolve(0);
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  printBanner(config, server, startupLines, describeDefaults(defaults), say);
  return stopped;
}

export function resolveServeConfig(model: string | undefined, flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const notices = vllmFlagNotices(flags as Record<string, unknown>, model);
  if (notices.refusals.length) throw new ServeFlagError(notices.refusals.join('\n'));
  let topology = flags.topology ? loadTopology(flags.topology) : topologyFromFlags({
    ...(flags.tensorParallelSize ? { tensorParallelSize: int('--tensor-parallel-size', flags.tensorParallelSize, 1) } : {}),
    ...(flags.pipelineParallelSize ? { pipelineParallelSize: int('--pipeline-parallel-size', flags.pipelineParallelSize, 1) } : {}),
  });
  const serve = topology.serve;
  const tp = flags.tensorParallelSize ? int('--tensor-parallel-size', flags.tensorParallelSize, 1) : topology.tensor_parallel_size;
  const pp = flags.pipelineParallelSize ? int('--pipeline-parallel-size', flags.pipelineParallelSize, 1) : topology.pipeline_parallel_size;
  const placementFlag = flags.rankPlacement ?? (typeof topology.placement === 'string' ? topology.placement : undefined);
  if (placementFlag !== undefined && !['local', 'thread', 'process'].includes(placementFlag)) {
    throw new ServeFlagError(`--rank-placement must be local, thread or process, got "${placementFlag}"`);
  }
  // Several ranks (or a rank on a node): the engine runs the plan of this topology, flags over the file.
  const multiRank = tp * pp > 1 || typeof topology.placement !== 'string' || topology.stages.length > 0;
  if (multiRank) {
    if (placementFlag === 'local' && tp * pp > 1) throw new ServeFlagError(`--rank-placement local runs every rank in the main thread, where ${tp * pp} ranks would block each other; use thread or process`);
    topology = { ...topology, tensor_parallel_size: tp, pipeline_parallel_size: pp, ...(flags.rankPlacement ? { placement: flags.rankPlacement as Topology['placement'] } : {}) };
  }

  let modelDir = model ?? topology.model;
  let embeddedDefault = false;
  if (!modelDir) {
    modelDir = ensureDefaultModel(env).dir;
    embeddedDefault = true;
  }
  // the embedded default is tiny: a modest context and cache instead of the full 131072 tokens and 2 GiB
  const fallback: { maxModelLen?: number; kvCacheMemory?: string } = embeddedDefault ? DEFAULT_MODEL.engine : {};
  const generationConfig = flags.generationConfig ?? 'auto';
  if (generationConfig !== 'auto' && generationConfig !== 'vllm') throw new ServeFlagError(`--generation-config must be auto or vllm, got "${generationConfig}"`);
  const policy = flags.schedulingPolicy;
  if (policy !== undefined && policy !== 'fcfs' && policy !== 'priority') throw new ServeFlagError(`--scheduling-policy must be fcfs or priority, got "${policy}"`);

  const engine: TroupeOptions = { model: modelDir };
  const set = <K extends keyof TroupeOptions>(key: K, value: TroupeOptions[K] | undefined) => {
    if (value !== undefined) engine[key] = value;
  };
  set('dtype', flags.dtype ?? serve.dtype);
  set('quantization', flags.quantization);
  set('kvCacheDtype', flags.kvCacheDtype);
  set('maxModelLen', flags.maxModelLen ? int('--max-model-len', flags.maxModelLen, 1) : serve.max_model_len ?? fallback.maxModelLen);
  set('maxNumSeqs', flags.maxNumSeqs ? int('--max-num-seqs', flags.maxNumSeqs, 1) : serve.max_num_seqs);
  set('maxNumBatchedTokens', flags.maxNumBatchedTokens ? int('--max-num-batched-tokens', flags.maxNumBatchedTokens, 1) : serve.max_num_batched_tokens);
  set('blockSize', flags.blockSize ? int('--block-size', flags.blockSize, 1) : serve.block_size);
  set('kvCacheMemory', flags.kvCacheMemory ?? topology.memory.kv_cache ?? fallback.kvCacheMemory);
  set('enablePrefixCaching', flags.enablePrefixCaching ?? serve.enable_prefix_caching);
  set('schedulingPolicy', policy as TroupeOptions['schedulingPolicy']);
  set('cpuOffloadGb', flags.cpuOffloadGb !== undefined ? Number(flags.cpuOffloadGb) : undefined);
  set('chatTemplate', flags.chatTemplate);
  set('threads', flags.threads ? int('--threads', flags.threads, 1) : topology.threads_per_rank);
  if (multiRank) {
    // checked here, before anything starts: hardware, model, memory (readable errors, exit code 2)
    const kvCache = engine.kvCacheMemory ?? topology.memory.kv_cache;
    const checked = { ...topology, ...(flags.threads ? { threads_per_rank: int('--threads', flags.threads, 1) } : {}), memory: { ...topology.memory, ...(kvCache !== undefined ? { kv_cache: kvCache } : {}) } };
    planRanks(checked, modelDir, engine.dtype ?? 'auto', flags.topology ?? 'flags', shapeOptions(engine));
    set('parallel', { topology: checked });
    delete engine.threads; // per rank, from the plan
    const onNodes = [...new Set([...topology.stages.flatMap((st) => [st.placement, ...(st.rank_placements ?? [])]), topology.placement].filter((p): p is { node: string } => typeof p === 'object'))];
    if (onNodes.length) {
      const token = readJoinToken({ file: flags.joinTokenFile, flag: flags.joinToken, env: env['TROUPE_JOIN_TOKEN'] || undefined });
      if (!token) throw new ServeFlagError(`stages are placed on nodes (${onNodes.map((n) => n.node).join(', ')}): give --join-token-file (or TROUPE_JOIN_TOKEN) for them to join with`);
      try {
        checkJoinToken(token);
      } catch (error) {
        throw new ServeFlagError((error as Error).message);
      }
      const [listenHost, listenPort] = (topology.leader?.listen ?? '127.0.0.1:7070').split(':');
      set('nodeListener', { token, host: listenHost!, port: Number(listenPort) });
      if (flags.nodeRejoinTimeout !== undefined) set('nodeRejoinTimeoutMs', int('--node-rejoin-timeout', flags.nodeRejoinTimeout, 0) * 1000);
    }
  } else {
    set('rankPlacement', placementFlag as TroupeOptions['rankPlacement']);
  }

  const envKey = env['TROUPE_API_KEY'];
  const names = flags.servedModelName ?? (serve.served_model_name ? [serve.served_model_name] : [embeddedDefault ? DEFAULT_MODEL.servedName : modelDir]);
  return {
    modelDir, embeddedDefault,
    servedModelNames: names,
    host: flags.host ?? serve.host ?? '127.0.0.1',
    port: flags.port !== undefined ? int('--port', flags.port, 0, 65535) : serve.port ?? 8000,
    engine, topology,
    topologySource: flags.topology ?? 'flags',
    apiKeys: flags.apiKey?.length ? flags.apiKey : envKey ? [envKey] : [],
    generationConfig,
    ...(flags.seed !== undefined ? { seed: int('--seed', flags.seed, 0) } : {}),
    maxRequestBytes: byteSize('--max-request-bytes', flags.maxRequestBytes ?? '16MiB'),
    maxPendingRequests: int('--max-pending-requests', flags.maxPendingRequests ?? '256', 0),
    shutdownTimeoutS: number('--shutdown-timeout', flags.shutdownTimeout ?? '30', 0),
    cors: {
      allowedOrigins: flags.allowedOrigins !== undefined ? list('--allowed-origins', flags.allowedOrigins) : DEFAULT_CORS.allowedOrigins,
      allowedMethods: flags.allowedMethods !== undefined ? list('--allowed-methods', flags.allowedMethods) : DEFAULT_CORS.allowedMethods,
      allowedHeaders: flags.allowedHeaders !== undefined ? list('--allowed-headers', flags.allowedHeaders) : DEFAULT_CORS.allowedHeaders,
      allowCredentials: flags.allowCredentials ?? false,
    },
    requestIdHeaders: flags.enableRequestIdHeaders ?? false,
    log: {
      level: flagValue(() => parseLogLevel(flags.logLevel ?? 'info')),
      format: flagValue(() => parseLogFormat(flags.logFormat ?? 'text')),
      requests: flags.enableLogRequests ?? false,
      statsIntervalS: flags.disableLogStats ? 0 : number('--log-stats-interval', flags.logStatsInterval ?? '10', 0),
    },
    vllmFlagWarnings: notices.warnings,
    toolCalls: toolCallFlags(flags),
  };
}

function list(flag: string, text: string): string[] {
  return flagValue(() => parseListFlag(flag, text));
}

/** A parser's error as a ServeFlagError (exit code 2). */
function flagValue<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new ServeFlagError((error as Error).message);
  }
}

/** --enable-auto-tool-choice needs a parser, as in vLLM; the parser must be one Troupe has. */
function toolCallFlags(flags: ServeFlags): ToolCallOptions {
  const parser = flags.toolCallParser;
  if (parser !== undefined && !(TOOL_CALL_PARSERS as readonly string[]).includes(parser)) {
    throw new ServeFlagError(`--tool-call-parser ${parser}: Troupe has ${TOOL_CALL_PARSERS.join(', ')} (Llama 3.x's JSON tool calls)`);
  }
  if (flags.enableAutoToolChoice && parser === undefined) throw new ServeFlagError('--enable-auto-tool-choice needs --tool-call-parser (llama3_json for Llama 3.x)');
  return { enableAutoToolChoice: flags.enableAutoToolChoice ?? false, toolCallParser: (parser as ToolCallOptions['toolCallParser']) ?? null };
}

function printBanner(config: ServeConfig, server: GatewayServer, engineLines: string[], defaults: string, say: (line: string) => void): void {
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${server.port}`;
  const lines = [
    `troupe serve ${pkg.version}: model ${config.modelDir}` +
      (config.embeddedDefault ? ` (the embedded default: ${DEFAULT_MODEL.description})` : ''),
    `served as: ${config.servedModelNames.join(', ')}; max_model_len ${server.ctx.engine.maxModelLen}; sampling defaults: ${defaults}`,
    `topology (${config.topologySource}):`,
    ...topologyLines(config),
    ...engineLines,
    `admission: ${server.ctx.admission.capacity} sequences (max_num_seqs ${config.engine.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS} + ${config.maxPendingRequests} pending); ` +
      `bodies up to ${config.maxRequestBytes} bytes${config.apiKeys.length ? '; API key required on /v1/*' : ''}`,
    `OpenAI API on ${url}/v1 (completions, chat/completions, models), WebSocket ${url.replace('http', 'ws')}/v1/stream, ${url}/metrics`,
  ];
  for (const line of lines) say(line);
}

function topologyLines(config: ServeConfig): string[] {
  try {
    const kvCache = config.engine.kvCacheMemory ?? config.topology.memory.kv_cache;
    const topology = { ...config.topology, memory: { ...config.topology.memory, ...(kvCache !== undefined ? { kv_cache: kvCache } : {}) } };
    const plan = buildPlan(topology, probeHardware(), modelShape(config.modelDir, config.engine.dtype, shapeOptions(config.engine)), config.topologySource);
    return describePlan(plan).split('\n').map((l) => `  ${l}`);
  } catch (error) {
    return [`  1 rank (${config.engine.rankPlacement ?? 'local'}); ${(error as Error).message.split('\n')[0]}`];
  }
}

function int(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || Number(text) > max) throw new ServeFlagError(`${flag} must be an integer in [${min}, ${max}], got "${text}"`);
  return Number(text);
}

function number(flag: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) throw new ServeFlagError(`${flag} must be a number >= ${min}, got "${text}"`);
  return value;
}

function byteSize(flag: string, text: string): number {
  try {
    return parseByteSize(text);
  } catch {
    throw new ServeFlagError(`${flag} must be a size like 16MiB or 1000000, got "${text}"`);
  }
}

/** What the plan's memory check needs to know of the engine's options: FP8 linears and KV cache. */
function shapeOptions(engine: Partial<TroupeOptions>): ModelShapeOptions {
  return {
    ...(engine.quantization !== undefined ? { quantization: engine.quantization } : {}),
    ...(engine.kvCacheDtype !== undefined ? { kvCacheDtype: engine.kvCacheDtype } : {}),
  };
}
