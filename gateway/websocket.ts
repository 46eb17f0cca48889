// WebSocket /v1/stream: the same JSON bodies and the same chunks as the HTTP
// routes, several requests at once on one socket, each under an id the
// client picks, each cancellable.
//
//   client -> {"id": "a1", "path": "/v1/chat/completions", "body": {...}}   (always streamed)
//   server -> {"id": "a1", "data": {chunk}}        as many as the SSE stream has
//   server -> {"id": "a1", "done": true}           the end ([DONE])
//   server -> {"id": "a1", "error": {message, type, param, code}}    instead, on failure (ends that id)
//   client -> {"id": "a1", "cancel": true}         unfinished choices end with finish_reason "abort", then done
//
// A message that is not such an object gets {"id": null, "error": ...}. A
// client that cannot keep up (more than the backpressure limit buffered) is
// disconnected, and a closed socket aborts its requests in the engine.
// Sends from outside uWS's callbacks are corked, and nothing touches a
// socket after its close handler ran.
import { DISABLED, type TemplatedApp, type WebSocket } from './uws.js';
import { z } from 'zod';
import type { ApiKeyCheck } from './auth.js';
import type { CorsPolicy } from './cors.js';
import type { GatewayContext } from './context.js';
import { ApiError, badRequest, statusLine, toApiError } from './errors.js';
import type { GenerationRun } from './generation-run.js';
import type { GenerationSink } from './generation-sink.js';
import { serveGeneration, type GenerationKind } from './routes/generation.js';

const STREAM_PATH = '/v1/stream';

const PATHS: Record<string, GenerationKind> = { '/v1/completions': 'completion', '/v1/chat/completions': 'chat' };

const messageSchema = z.union([
  z.object({ id: z.string().min(1).max(256), cancel: z.literal(true) }),
  z.object({ id: z.string().min(1).max(256), path: z.enum(Object.keys(PATHS) as [string, ...string[]]), body: z.record(z.string(), z.unknown()) }),
], { error: 'a message is {"id", "path": "/v1/completions" | "/v1/chat/completions", "body"} or {"id", "cancel": true}' });

interface SocketData {
  connection: StreamConnection;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** One request in flight on a socket. */
interface StreamRequest {
  run: GenerationRun | null;
  cancelled: boolean;
  goneHandlers: (() => void)[];
}

class StreamConnection {
  private socket: WebSocket<SocketData> | null = null;
  private readonly requests = new Map<string, StreamRequest>();

  constructor(private readonly ctx: GatewayContext) {}

  opened(socket: WebSocket<SocketData>): void {
    this.socket = socket;
  }

  get open(): boolean {
    return this.socket !== null;
  }

  /** The socket closed: every request in flight is detached (the engine aborts them). */
  closed(): void {
    this.socket = null;
    for (const request of this.requests.values()) for (const handler of request.goneHandlers.splice(0)) handler();
    this.requests.clear();
  }

  send(message: unknown): void {
    const socket = this.socket;
    if (!socket) return;
    // UTF-8 bytes, never a JS string: uWS's build for Node 24 sends a one-byte (Latin-1) string's bytes as they are
    socket.cork(() => socket.send(Buffer.from(JSON.stringify(message)), false));
  }

  receive(raw: ArrayBuffer): void {
    let message: z.infer<typeof messageSchema>;
    try {
      const parsed: unknown = JSON.parse(utf8.decode(raw));
      const result = messageSchema.safeParse(parsed);
      if (!result.success) throw badRequest(result.error.issues[0]!.message);
      message = result.data;
    } catch (error) {
      const apiError = error instanceof ApiError ? error : badRequest(`the message is not valid JSON in UTF-8: ${(error as Error).message}`);
      this.send({ id: null, ...apiError.body });
      return;
    }
    if ('cancel' in message) this.cancel(message.id);
    else this.start(message.id, PATHS[message.path]!, message.body);
  }

  private cancel(id: string): void {
    const request = this.requests.get(id);
    if (!request) return; // already finished: nothing to do
    request.cancelled = true;
    request.run?.abort();
  }

  private start(id: string, kind: GenerationKind, body: unknown): void {
    if (this.requests.has(id)) {
      this.send({ id, ...badRequest(`request id "${id}" is already in flight on this socket`, 'id').body });
      return;
    }
    const request: StreamRequest = { run: null, cancelled: false, goneHandlers: [] };
    this.requests.set(id, request);
    const sink = this.sinkFor(id, request);
    // the socket always streams: the body is read as if it said "stream": true
    serveGeneration(this.ctx, kind, { ...(body as object), stream: true }, sink, {
      arrivalMs: performance.now(),
      forceStream: true,
      onRun: (run) => {
        request.run = run;
        if (request.cancelled) run.abort();
      },
    }).catch((error) => sink.fail(toApiError(error)));
  }

  private sinkFor(id: string, request: StreamRequest): GenerationSink {
    const connection = this;
    let ended = false;
    const finish = (message: unknown) => {
      if (ended) return;
      ended = true;
      this.requests.delete(id);
      this.send(message);
    };
    return {
      get open() {
        return !ended && connection.open;
      },
      onGone: (handler) => request.goneHandlers.push(handler),
      respond: (body) => {
        this.send({ id, data: body });
        finish({ id, done: true });
      },
      chunk: (body) => {
        if (!ended) this.send({ id, data: body });
      },
      done: () => finish({ id, done: true }),
      fail: (error) => finish({ id, ...error.body }),
    };
  }
}

/**
 * Mounts /v1/stream on `app`. At the upgrade, before any frame: a browser's
 * Origin must be one --allowed-origins admits (403), and the API key, when
 * set, must be there (401).
 */
export function mountStream(app: TemplatedApp, ctx: GatewayContext, auth: ApiKeyCheck, cors: CorsPolicy): void {
  app.ws<SocketData>(STREAM_PATH, {
    compression: DISABLED,
    maxPayloadLength: ctx.limits.maxRequestBytes,
    maxBackpressure: ctx.limits.maxQueuedBytes,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      const origin = req.getHeader('origin');
      try {
        if (origin && !cors.originAllowed(origin)) throw new ApiError(403, `the origin ${origin} may not open ${STREAM_PATH} (see --allowed-origins)`);
        if (auth.guards(STREAM_PATH)) auth.check(authorization);
        if (ctx.admission.isDraining) throw new ApiError(503, 'the server is shutting down and accepts no new requests');
      } catch (error) {
        const apiError = toApiError(error);
        res.writeStatus(statusLine(apiError.status)).writeHeader('Content-Type', 'application/json').end(Buffer.from(JSON.stringify(apiError.body)), true);
        return;
      }
      res.upgrade<SocketData>({ connection: new StreamConnection(ctx) }, key, protocol, extensions, context);
    },
    open: (ws) => ws.getUserData().connection.opened(ws),
    message: (ws, message) => ws.getUserData().connection.receive(message),
    close: (ws) => ws.getUserData().connection.closed(),
  });
}
