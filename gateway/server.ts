// The OpenAI-compatible server on uWebSockets.js: routes, auth, body limits,
// listening and a graceful drain. Route handlers follow uWS's rules: the
// ResponseWriter (onAborted) and the body reader (onData) are set up
// synchronously in the handler, headers are read before any await, and all
// later writes go through the writer, which corks them.
//
//   POST /v1/completions, /v1/chat/completions   JSON or SSE (routes/generation.ts)
//   GET  /v1/models, /health, /version, /metrics
//   POST /tokenize, /detokenize
//   WS   /v1/stream                               (websocket.ts)
//   OPTIONS *                                      CORS preflight (cors.ts)
//
// Every response carries the CORS headers its Origin earns, Keep-Alive
// (below), and with --enable-request-id-headers the request's X-Request-Id.
import { App, us_listen_socket_close, us_socket_local_port, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';
import type { Troupe } from '../actors/engine/troupe.js';
import { Admission } from './admission.js';
import { ApiKeyCheck } from './auth.js';
import type { Logger } from './logger.js';
import { EngineStatsLog } from './engine-stats-log.js';
import { RequestLog } from './request-log.js';
import { CorsPolicy, DEFAULT_CORS, type CorsOptions } from './cors.js';
import { REQUEST_ID_HEADER, requestIdFrom } from './request-id.js';
import { SeedSource, ServedModels, type GatewayContext, type GatewayLimits } from './context.js';
import { EngineClient } from './engine-client.js';
import { ApiError, toApiError } from './errors.js';
import { ClientGoneError, parseJson, readBody } from './http/body-reader.js';
import { ResponseWriter, type Headers } from './http/response-writer.js';
import { HttpGenerationSink } from './http/sse-sink.js';
import { GatewayMetrics } from './metrics.js';
import { serveGeneration, type GenerationKind } from './routes/generation.js';
import { metricsText, modelList, versionInfo } from './routes/info.js';
import { detokenizeRoute, tokenizeRoute } from './routes/tokenize.js';
import type { SamplingDefaults } from './sampling-defaults.js';
import type { ToolCallOptions } from './tool-calls.js';
import { mountStream } from './websocket.js';

export interface GatewayOptions {
  host: string;
  /** 0: any free port (see GatewayServer.port). */
  port: number;
  /** The model directory (shown as the model's root). */
  modelDir: string;
  /** --served-model-name (default: the model directory as given). */
  servedModelNames: string[];
  /** --api-key; none: no auth. */
  apiKeys?: string[];
  /** The engine's max_num_seqs: sequences that run at once. */
  maxNumSeqs: number;
  /** --max-pending-requests: sequences that may wait beyond max_num_seqs before 429s. */
  maxPendingRequests: number;
  /** --max-request-bytes. */
  maxRequestBytes: number;
  /** /tokenize and /detokenize requests served at once; past it, 429 (default DEFAULT_MAX_TOKENIZE_REQUESTS). */
  maxTokenizeRequests?: number;
  /** Bytes a streamed response may queue for a slow client before it is disconnected. */
  maxQueuedBytes?: number;
  defaults?: SamplingDefaults;
  /** --seed: requests without a seed draw theirs from this sequence (reproducible runs). */
  seed?: number;
  /** --enable-auto-tool-choice / --tool-call-parser (default: tool_choice "auto" refused, as in vLLM). */
  toolCalls?: ToolCallOptions;
  version: string;
  /** Server-side failures (500s); default console.error. */
  log?: (line: string) => void;
  /** --allowed-origins, --allowed-methods, --allowed-headers, --allow-credentials (default: vLLM's, everything allowed). */
  cors?: CorsOptions;
  /** --enable-request-id-headers: X-Request-Id taken from the request (or made up) and sent back. */
  requestIdHeaders?: boolean;
  /** Request lines, engine stats and server-side failures go here (default: none, failures to `log`). */
  logger?: Logger;
  /** --enable-log-requests: one line per request. */
  logRequests?: boolean;
  /** Seconds between engine stats lines; 0 or none: no stats lines. */
  statsIntervalS?: number;
  /** Also give the stats figures as log fields (--log-format json). */
  structuredStats?: boolean;
  /** vllm:cache_config_info's settings the engine does not report (default: auto, prefix caching on). */
  cacheConfig?: { cacheDtype: string; enablePrefixCaching: boolean };
}

/** What a handler knows of its request besides the body. */
interface RequestMeta {
  /** performance.now() when it arrived. */
  arrivalMs: number;
  /** Its X-Request-Id (with --enable-request-id-headers), else none. */
  requestId?: string;
}

type JsonHandler = (body: unknown, writer: ResponseWriter, meta: RequestMeta) => Promise<void>;

/**
 * Keep-Alive: timeout advertised on responses. uWS closes an idle HTTP
 * connection after 10 s; a pooled client told nothing may reuse a socket just
 * as the server closes it, so clients are told to drop idle sockets sooner.
 */
export const KEEP_ALIVE_TIMEOUT_S = 5;

export class GatewayServer {
  private listenSocket: us_listen_socket | null = null;
  private portNumber = 0;
  private statsLog: EngineStatsLog | null = null;

  private constructor(
    private readonly app: TemplatedApp,
    readonly ctx: GatewayContext,
    private readonly auth: ApiKeyCheck,
    private readonly log: (line: string) => void,
    private readonly cors: CorsPolicy,
    private readonly requestIdHeaders: boolean,
  ) {}

  static async start(troupe: Troupe, options: GatewayOptions): Promise<GatewayServer> {
    const models = new ServedModels(options.servedModelNames, options.modelDir);
    const metrics = new GatewayMetrics(models.names[0]!, { maxModelLen: troupe.maxModelLen });
    metrics.setCacheConfig({
      block_size: troupe.kvPlan.blockSize, num_gpu_blocks: troupe.kvPlan.numBlocks,
      cache_dtype: options.cacheConfig?.cacheDtype ?? 'auto', enable_prefix_caching: options.cacheConfig?.enablePrefixCaching ?? true,
    });
    const limits: GatewayLimits = { maxRequestBytes: options.maxRequestBytes, maxQueuedBytes: options.maxQueuedBytes ?? 16 << 20 };
    const ctx: GatewayContext = {
      engine: await EngineClient.create(troupe, options.modelDir, metrics),
      admission: new Admission(options.maxNumSeqs, options.maxPendingRequests, options.maxTokenizeRequests),
      metrics, models, limits,
      defaults: options.defaults ?? {},
      seeds: new SeedSource(options.seed),
      toolCalls: options.toolCalls ?? { enableAutoToolChoice: false, toolCallParser: null },
      version: options.version,
      requestLog: new RequestLog(options.logRequests && options.logger ? options.logger : null, metrics.requests),
    };
    const logger = options.logger;
    const log = options.log ?? (logger ? (line: string) => logger.error(line) : (line: string) => console.error(line));
    const server = new GatewayServer(App(), ctx, new ApiKeyCheck(options.apiKeys ?? []), log,
      new CorsPolicy(options.cors ?? DEFAULT_CORS), options.requestIdHeaders ?? false);
    server.mountRoutes();
    await server.listen(options.host, options.port);
    if (logger && options.statsIntervalS) {
      server.statsLog = new EngineStatsLog(logger, async () => ({
        atMs: performance.now(), ...metrics.totals, usage: await troupe.kvUsage(),
      }), options.statsIntervalS, options.structuredStats ?? false).start();
    }
    return server;
  }

  get port(): number {
    return this.portNumber;
  }

  get draining(): boolean {
    return this.ctx.admission.isDraining;
  }

  /**
   * Graceful stop: the listen socket closes and new requests get 503; the
   * requests in flight may finish for up to `timeoutMs`, then the rest are
   * aborted (their clients get finish_reason "abort"). Resolves true if
   * everything finished in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.ctx.admission.drain();
    this.stopListening();
    const settled = await waitFor(() => this.ctx.admission.admitted === 0, timeoutMs);
    if (!settled) {
      this.ctx.engine.abortAll();
      await waitFor(() => this.ctx.admission.admitted === 0, 5_000);
    }
    return settled;
  }

  /** Closes the listen socket and every connection now. */
  close(): void {
    this.statsLog?.stop();
    this.stopListening();
    this.app.close();
  }

  private stopListening(): void {
    if (this.listenSocket) us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
  }

  private listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) {
          reject(new Error(`could not listen on ${host}:${port} (is the port in use?)`));
          return;
        }
        this.listenSocket = socket;
        this.portNumber = us_socket_local_port(socket as never);
        resolve();
      });
    });
  }

  private mountRoutes(): void {
    const { app, ctx } = this;
    const generation = (kind: GenerationKind): JsonHandler => (body, writer, meta) =>
      serveGeneration(ctx, kind, body, new HttpGenerationSink(writer), meta);
    this.post('/v1/completions', generation('completion'));
    this.post('/v1/chat/completions', generation('chat'));
    // admitted before their body is read (Admission.acquireTokenize), so a flood buffers no bodies
    this.post('/tokenize', async (body, writer) => writer.json(200, await tokenizeRoute(ctx, body)), { tokenizeLane: true });
    this.post('/detokenize', async (body, writer) => writer.json(200, await detokenizeRoute(ctx, body)), { tokenizeLane: true });
    this.get('/v1/models', async (writer) => writer.json(200, modelList(ctx)));
    this.get('/version', async (writer) => writer.json(200, versionInfo(ctx)));
    this.get('/health', async (writer) => {
      if (this.draining) throw new ApiError(503, 'the server is shutting down');
      const engine = this.ctx.engine.troupe.engineState;
      if (engine.state === 'down' || engine.state === 'unavailable') throw new ApiError(503, `the engine is ${engine.state}: ${engine.why}`);
      writer.send(200, {}, '');
    });
    this.get('/metrics', async (writer) => {
      const text = await metricsText(ctx);
      writer.send(200, { 'Content-Type': ctx.metrics.contentType }, text);
    });
    mountStream(app, ctx, this.auth, this.cors);
    app.options('/*', (res, req) => this.onOptions(res, req));
    app.any('/*', (res, req) => {
      if (req.getMethod() === 'options') return this.onOptions(res, req);
      const writer = new ResponseWriter(res, { headers: this.common(req).headers });
      const path = req.getUrl();
      writer.json(404, new ApiError(404, `no route for ${req.getMethod().toUpperCase()} ${path}`).body, true);
    });
  }

  private post(path: string, handler: JsonHandler, options: { tokenizeLane?: boolean } = {}): void {
    this.app.post(path, (res, req) => this.onPost(path, handler, res, req, options.tokenizeLane ?? false));
    this.methodNotAllowed(path, 'POST');
  }

  private get(path: string, handler: (writer: ResponseWriter) => Promise<void>): void {
    this.app.get(path, (res, req) => {
      const common = this.common(req);
      const writer = new ResponseWriter(res, { headers: common.headers });
      const authorization = req.getHeader('authorization');
      void (async () => {
        try {
          if (common.refusal) throw common.refusal;
          if (this.auth.guards(path)) this.auth.check(authorization);
          await handler(writer);
        } catch (error) {
          this.fail(writer, error);
        }
      })();
    });
    this.methodNotAllowed(path, 'GET');
  }

  /**
   * Synchronous part first: writer (onAborted), headers, auth, admission to
   * the tokenize lane where the route is in it, body reader (onData); the
   * rest after the body arrived.
   */
  private onPost(path: string, handler: JsonHandler, res: HttpResponse, req: HttpRequest, tokenizeLane: boolean): void {
    const arrivalMs = performance.now();
    const common = this.common(req);
    const writer = new ResponseWriter(res, { maxQueuedBytes: this.ctx.limits.maxQueuedBytes, headers: common.headers });
    const authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    let release = () => {};
    const meta: RequestMeta = { arrivalMs, ...(common.requestId !== undefined ? { requestId: common.requestId } : {}) };
    try {
      if (common.refusal) throw common.refusal;
      if (this.draining) throw new ApiError(503, 'the server is shutting down and accepts no new requests');
      if (this.auth.guards(path)) this.auth.check(authorization);
      if (tokenizeLane) release = this.ctx.admission.acquireTokenize();
    } catch (error) {
      this.fail(writer, error, true); // the body was not read: close the connection
      return;
    }
    readBody(res, this.ctx.limits.maxRequestBytes, contentLength, (handler) => writer.onGone(handler))
      .then((body) => handler(parseJson(body), writer, meta))
      .catch((error) => this.fail(writer, error, error instanceof ApiError && error.status === 413))
      .finally(release);
  }

  private methodNotAllowed(path: string, allowed: string): void {
    this.app.any(path, (res, req) => {
      if (req.getMethod() === 'options') return this.onOptions(res, req);
      const writer = new ResponseWriter(res, { headers: this.common(req).headers });
      writer.json(405, new ApiError(405, `${req.getMethod().toUpperCase()} is not allowed on ${path}; use ${allowed}`).body, true);
    });
  }

  /**
   * What every response to `req` carries: CORS for its Origin, Keep-Alive,
   * and X-Request-Id (the client's, or a new one when it sent none or a bad
   * one, which `refusal` then words). Read synchronously, in the handler.
   */
  private common(req: HttpRequest): { headers: Headers; requestId?: string; refusal?: ApiError } {
    const headers: Headers = { ...this.cors.responseHeaders(req.getHeader('origin')), 'Keep-Alive': `timeout=${KEEP_ALIVE_TIMEOUT_S}` };
    if (!this.requestIdHeaders) return { headers };
    try {
      const requestId = requestIdFrom(req.getHeader('x-request-id'));
      headers[REQUEST_ID_HEADER] = requestId;
      return { headers, requestId };
    } catch (error) {
      headers[REQUEST_ID_HEADER] = requestIdFrom('');
      return { headers, refusal: error as ApiError };
    }
  }

  /** OPTIONS: a CORS preflight gets its answer; any other OPTIONS lists the methods. */
  private onOptions(res: HttpResponse, req: HttpRequest): void {
    const origin = req.getHeader('origin');
    const requestMethod = req.getHeader('access-control-request-method');
    const requestHeaders = req.getHeader('access-control-request-headers');
    const writer = new ResponseWriter(res, { headers: { 'Keep-Alive': `timeout=${KEEP_ALIVE_TIMEOUT_S}` } });
    if (!origin || !requestMethod) {
      writer.send(204, { Allow: 'GET, POST, OPTIONS' }, '');
      return;
    }
    const answer = this.cors.preflight(origin, requestMethod, requestHeaders);
    if (answer.ok) writer.send(200, { ...answer.headers, 'Content-Type': 'text/plain' }, 'OK');
    else writer.json(400, new ApiError(400, `CORS preflight refused: ${answer.refused} not allowed (see --allowed-origins, --allowed-methods, --allowed-headers)`).body);
  }

  private fail(writer: ResponseWriter, error: unknown, close = false): void {
    if (error instanceof ClientGoneError) return; // nobody to answer
    const apiError = toApiError(error);
    if (apiError.status >= 500 && apiError.status !== 503) this.log(`[troupe] gateway: ${(error as Error)?.stack ?? apiError.message}`);
    writer.json(apiError.status, apiError.body, close);
  }
}

/** Polls `done` every 20 ms until it holds or `timeoutMs` passed. */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
