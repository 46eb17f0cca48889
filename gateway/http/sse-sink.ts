// A generation's output over HTTP: a JSON body, or server-sent events in
// OpenAI's framing:
//
//   data: {"id":"cmpl-...","object":"text_completion",...}\n\n
//   ...
//   data: [DONE]\n\n
//
// An error after the stream started is sent as an event of its own,
// data: {"error": {...}}, followed by [DONE], as vLLM does.
import type { ApiError } from '../errors.js';
import type { GenerationSink } from '../generation-sink.js';
import type { ResponseWriter } from './response-writer.js';

const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  'Connection': 'keep-alive',
  'X-Accel-Buffering': 'no',
};

/** An SSE comment line: what the writer sends to flush uWS's buffer under backpressure (clients ignore it). */
const SSE_FILLER = ':\n';

function sseEvent(data: unknown): string {
  return `data: ${JSON.stringify(data)}\n\n`;
}

export class HttpGenerationSink implements GenerationSink {
  private streaming = false;

  constructor(private readonly writer: ResponseWriter) {}

  get open(): boolean {
    return this.writer.open;
  }

  onGone(handler: () => void): void {
    this.writer.onGone(handler);
  }

  respond(body: unknown): void {
    this.writer.json(200, body);
  }

  chunk(body: unknown): void {
    if (!this.streaming) {
      this.streaming = true;
      this.writer.begin(200, SSE_HEADERS, SSE_FILLER);
    }
    this.writer.write(sseEvent(body));
  }

  done(): void {
    if (!this.streaming) {
      this.streaming = true;
      this.writer.begin(200, SSE_HEADERS, SSE_FILLER);
    }
    this.writer.end('data: [DONE]\n\n');
  }

  fail(error: ApiError): void {
    if (!this.streaming) {
      this.writer.json(error.status, error.body);
      return;
    }
    this.writer.write(sseEvent(error.body));
    this.writer.end('data: [DONE]\n\n');
  }
}
