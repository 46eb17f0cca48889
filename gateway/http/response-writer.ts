// One HTTP response, written under uWebSockets.js's rules:
//
// 1. onAborted is registered in the constructor, which the route handler calls
//    synchronously, before any await: a response whose client went away must
//    never be touched again (uWS throws on it), so every method checks.
// 2. Writes made outside uWS's own callback (after an await, from an engine
//    delta) are wrapped in res.cork(), which batches them into one syscall
//    and is required for correctness outside the callback.
// 3. Backpressure. A whole body goes out with tryEnd; when the socket refuses
//    part of it, onWritable resumes from the offset uWS reports. A streamed
//    body goes out with write(); once a write reports backpressure, further
//    chunks wait in a queue until onWritable. While an onWritable handler is
//    registered uWS drains its own buffer only through our writes, so when
//    the queue is empty the handler writes the stream's filler (an SSE
//    comment) to push out what uWS holds. A client that lets more than
//    maxQueuedBytes pile up is disconnected (and its request aborted).
// 4. Text goes to uWS as UTF-8 bytes, never as a JS string: uWS's build for
//    Node 24 writes a one-byte (Latin-1) string's bytes unconverted.
import type { HttpResponse } from '../uws.js';
import { statusLine } from '../errors.js';

export interface ResponseWriterOptions {
  /** Bytes a streamed response may queue for a slow client before it is disconnected. */
  maxQueuedBytes?: number;
  /** Headers every response of this writer carries (CORS, X-Request-Id, Keep-Alive). */
  headers?: Headers;
}

export type Headers = Record<string, string>;

export class ResponseWriter {
  private aborted = false;
  private ended = false;
  private readonly goneHandlers: (() => void)[] = [];
  private readonly queue: string[] = [];
  private queuedBytes = 0;
  private backpressured = false;
  private writableRegistered = false;
  private pendingEnd: string | null = null;
  private filler = '';
  private readonly maxQueuedBytes: number;
  private readonly baseHeaders: Headers;

  constructor(private readonly res: HttpResponse, options: ResponseWriterOptions = {}) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 << 20;
    this.baseHeaders = options.headers ?? {};
    res.onAborted(() => this.gone());
  }

  /** The response can still be written: not ended, client still there. */
  get open(): boolean {
    return !this.aborted && !this.ended;
  }

  get clientGone(): boolean {
    return this.aborted;
  }

  /** Called once if the client goes away (or is disconnected) before the response ended. */
  onGone(handler: () => void): void {
    if (this.aborted) handler();
    else this.goneHandlers.push(handler);
  }

  /** A whole response; `close` also closes the connection (e.g. when the request body was not read). */
  send(status: number, headers: Headers, body: string | Uint8Array, close = false): void {
    if (!this.open) return;
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    this.res.cork(() => {
      this.head(status, headers, close);
      if (close) {
        this.ended = true;
        this.res.end(data, true);
        return;
      }
      const [ok, done] = this.res.tryEnd(data, data.length);
      if (done) this.ended = true;
      else if (!ok) this.resumeWhole(data);
    });
  }

  json(status: number, body: unknown, close = false): void {
    this.send(status, { 'Content-Type': 'application/json' }, JSON.stringify(body), close);
  }

  /** Starts a streamed body: status and headers now, chunks with write(). `filler` is written to drain uWS's buffer (see above). */
  begin(status: number, headers: Headers, filler: string): void {
    if (!this.open) return;
    this.filler = filler;
    this.res.cork(() => this.head(status, headers));
  }

  write(chunk: string): void {
    if (!this.open || this.pendingEnd !== null) return;
    if (this.backpressured) {
      this.enqueue(chunk);
      return;
    }
    this.res.cork(() => {
      if (!this.res.write(Buffer.from(chunk))) this.awaitWritable();
    });
  }

  /** Ends a streamed body (after the queue, if a slow client has one). */
  end(lastChunk = ''): void {
    if (!this.open || this.pendingEnd !== null) return;
    if (this.backpressured) {
      this.pendingEnd = lastChunk;
      return;
    }
    this.ended = true;
    this.res.cork(() => this.res.end(Buffer.from(lastChunk)));
  }

  /** Drops the connection now (a client too slow to keep up). */
  disconnect(): void {
    if (!this.open) return;
    this.gone();
    this.res.close();
  }

  /** `closing`: the connection ends with this response, so it advertises no Keep-Alive. */
  private head(status: number, headers: Headers, closing = false): void {
    this.res.writeStatus(statusLine(status));
    for (const [key, value] of Object.entries(this.baseHeaders)) {
      if (!(closing && key === 'Keep-Alive')) this.res.writeHeader(key, value);
    }
    for (const [key, value] of Object.entries(headers)) this.res.writeHeader(key, value);
  }

  /** tryEnd was refused part of `data`: send the rest from where uWS says it got to. */
  private resumeWhole(data: Uint8Array): void {
    this.res.onWritable((offset) => {
      if (!this.open) return true;
      const [ok, done] = this.res.tryEnd(data.subarray(offset), data.length);
      if (done) this.ended = true;
      return ok;
    });
  }

  private enqueue(chunk: string): void {
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > this.maxQueuedBytes) this.disconnect();
  }

  private awaitWritable(): void {
    this.backpressured = true;
    if (this.writableRegistered) return;
    this.writableRegistered = true;
    this.res.onWritable(() => this.flush());
  }

  /** onWritable: the queue first; with nothing queued, the filler, so uWS sends what it buffered. */
  private flush(): boolean {
    if (!this.open) return true;
    if (!this.backpressured) return true;
    let ok = this.queue.length ? true : this.res.write(Buffer.from(this.filler || ' '));
    while (ok && this.queue.length) {
      const chunk = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      ok = this.res.write(Buffer.from(chunk));
    }
    if (!ok) return false;
    this.backpressured = false;
    if (this.pendingEnd !== null) {
      this.ended = true;
      this.res.end(Buffer.from(this.pendingEnd));
    }
    return true;
  }

  private gone(): void {
    if (this.aborted || this.ended) return;
    this.aborted = true;
    for (const handler of this.goneHandlers.splice(0)) handler();
  }
}
