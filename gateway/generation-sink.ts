// Where a generation's output goes, whatever carries it: an HTTP response
// (JSON, or SSE chunks), or a WebSocket (gateway/websocket.ts).
import type { ApiError } from './errors.js';

export interface GenerationSink {
  /** False once the client is gone or the output ended. */
  readonly open: boolean;
  /** Called once if the client goes away before the output ended. */
  onGone(handler: () => void): void;
  /** The whole (non-streaming) response. */
  respond(body: unknown): void;
  /** One stream chunk. */
  chunk(body: unknown): void;
  /** The end of a stream. */
  done(): void;
  /** A failure: an error response before any chunk, an error event (then the end) after. */
  fail(error: ApiError): void;
}
