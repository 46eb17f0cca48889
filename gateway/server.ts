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
import { App, us_listen_socket_close, us_socket_local_port, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from './uws.js';
import type { Troupe } from '../actors/engine/troupe.js';
import { Admission } from './admission.js';
import { ApiKeyCheck } from './auth.js';
import { SeedSource, ServedModels, type GatewayContext, type GatewayLimits } from './context.js';
import { EngineClient } from './engine-client.js';
import { ApiError, toApiError } from './errors.js';
import { ClientGoneError, parseJson, readBody } from './http/body-reader.js';
import { ResponseWriter } from './http/response-writer.js';
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
}

type JsonHandler = (body: unknown, writer: ResponseWriter, arrivalMs: number) => Promise<void>;

export const DEFAULT_MAX_REQUEST_BYTES = 16 << 20;
export const DEFAULT_MAX_PENDING_REQUESTS = 256;

export class GatewayServer {
  private listenSocket: us_listen_socket | null = null;
  private portNumber = 0;

  private constructor(
    private readonly app: TemplatedApp,
    readonly ctx: GatewayContext,
    private readonly auth: ApiKeyCheck,
    private readonly log: (line: string) => void,
  ) {}

  static async start(troupe: Troupe, options: GatewayOptions): Promise<GatewayServer> {
    const models = new ServedModels(options.servedModelNames, options.modelDir);
    const metrics = new GatewayMetrics(models.names[0]!);
    const limits: GatewayLimits = { maxRequestBytes: options.maxRequestBytes, maxQueuedBytes: options.maxQueuedBytes ?? 16 << 20 };
    const ctx: GatewayContext = {
      engine: await EngineClient.create(troupe, options.modelDir, metrics),
      admission: new Admission(options.maxNumSeqs, options.maxPendingRequests),
      metrics, models, limits,
      defaults: options.defaults ?? {},
      seeds: new SeedSource(options.seed),
      toolCalls: options.toolCalls ?? { enableAutoToolChoice: false, toolCallParser: null },
      version: options.version,
    };
    const server = new GatewayServer(App(), ctx, new ApiKeyCheck(options.apiKeys ?? []), options.log ?? ((line) => console.error(line)));
    server.mountRoutes();
    await server.listen(options.host, options.port);
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
    const generation = (kind: GenerationKind): JsonHandler => (body, writer, arrivalMs) =>
      serveGeneration(ctx, kind, body, new HttpGenerationSink(writer), { arrivalMs });
    this.post('/v1/completions', generation('completion'));
    this.post('/v1/chat/completions', generation('chat'));
    this.post('/tokenize', async (body, writer) => writer.json(200, await tokenizeRoute(ctx, body)));
    this.post('/detokenize', async (body, writer) => writer.json(200, await detokenizeRoute(ctx, body)));
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
    mountStream(app, ctx, this.auth);
    app.any('/*', (res, req) => {
      const writer = new ResponseWriter(res);
      const path = req.getUrl();
      writer.json(404, new ApiError(404, `no route for ${req.getMethod().toUpperCase()} ${path}`).body, true);
    });
  }

  private post(path: string, handler: JsonHandler): void {
    this.app.post(path, (res, req) => this.onPost(path, handler, res, req));
    this.methodNotAllowed(path, 'POST');
  }

  private get(path: string, handler: (writer: ResponseWriter) => Promise<void>): void {
    this.app.get(path, (res, req) => {
      const writer = new ResponseWriter(res);
      const authorization = req.getHeader('authorization');
      void (async () => {
        try {
          if (this.auth.guards(path)) this.auth.check(authorization);
          await handler(writer);
        } catch (error) {
          this.fail(writer, error);
        }
      })();
    });
    this.methodNotAllowed(path, 'GET');
  }

  /** Synchronous part first: writer (onAborted), headers, auth, body reader (onData); the rest after the body arrived. */
  private onPost(path: string, handler: JsonHandler, res: HttpResponse, req: HttpRequest): void {
    const arrivalMs = performance.now();
    const writer = new ResponseWriter(res, { maxQueuedBytes: this.ctx.limits.maxQueuedBytes });
    const authorization = req.getHeader('authorization');
    const contentLength = req.getHeader('content-length');
    try {
      if (this.draining) throw new ApiError(503, 'the server is shutting down and accepts no new requests');
      if (this.auth.guards(path)) this.auth.check(authorization);
    } catch (error) {
      this.fail(writer, error, true); // the body was not read: close the connection
      return;
    }
    readBody(res, this.ctx.limits.maxRequestBytes, contentLength, (handler) => writer.onGone(handler))
      .then((body) => handler(parseJson(body), writer, arrivalMs))
      .catch((error) => this.fail(writer, error, error instanceof ApiError && error.status === 413));
  }

  private methodNotAllowed(path: string, allowed: string): void {
    this.app.any(path, (res, req) => {
      const writer = new ResponseWriter(res);
      writer.json(405, new ApiError(405, `${req.getMethod().toUpperCase()} is not allowed on ${path}; use ${allowed}`).body, true);
    });
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
