// One streamed /v1/completions request, timed as vLLM's benchmark times it:
// TTFT is the first chunk that carries a choice, each later chunk adds an
// inter-token latency (a chunk may hold several tokens), and the output
// length comes from the usage chunk (stream_options.include_usage) when the
// server sends one. A chunk with no text that only carries finish_reason is
// an end marker, not a token, and is not timed.
import type { BenchRequest } from './dataset.js';

export interface RequestOutcome {
  success: boolean;
  error?: string;
  promptLen: number;
  /** From the server's usage when given, else null. */
  serverPromptTokens: number | null;
  outputTokens: number;
  /** Seconds. */
  ttft: number;
  itl: number[];
  latency: number;
  generatedText: string;
}

export interface TargetServer {
  url: string;
  model: string;
  apiKey?: string;
  ignoreEos: boolean;
}

export async function sendRequest(server: TargetServer, request: BenchRequest): Promise<RequestOutcome> {
  const outcome: RequestOutcome = { success: false, promptLen: request.promptLen, serverPromptTokens: null, outputTokens: 0, ttft: 0, itl: [], latency: 0, generatedText: '' };
  const body = {
    model: server.model,
    prompt: request.prompt,
    max_tokens: request.outputLen,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ...(server.ignoreEos ? { ignore_eos: true } : {}),
  };
  const start = performance.now();
  let last = start;
  let firstSeen = false;
  let chunks = 0;
  try {
    const response = await fetch(server.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(server.apiKey ? { Authorization: `Bearer ${server.apiKey}` } : {}) },
      body: JSON.stringify(body),
    });
    if (!response.ok || !response.body) {
      outcome.error = `HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`;
      return outcome;
    }
    for await (const data of sseData(response.body)) {
      if (data === '[DONE]') break;
      const chunk = JSON.parse(data) as { choices?: { text?: string; finish_reason?: string | null }[]; usage?: { prompt_tokens?: number; completion_tokens?: number }; error?: { message?: string } };
      if (chunk.error) throw new Error(chunk.error.message ?? 'stream error');
      const choice = chunk.choices?.[0];
      if (choice) {
        const text = choice.text ?? '';
        if (!text && choice.finish_reason) continue; // an end marker
        const now = performance.now();
        if (!firstSeen) {
          firstSeen = true;
          outcome.ttft = (now - start) / 1000;
        } else {
          outcome.itl.push((now - last) / 1000);
        }
        last = now;
        chunks++;
        outcome.generatedText += text;
      } else if (chunk.usage) {
        outcome.outputTokens = chunk.usage.completion_tokens ?? 0;
        outcome.serverPromptTokens = chunk.usage.prompt_tokens ?? null;
      }
    }
    outcome.latency = (performance.now() - start) / 1000;
    if (!outcome.outputTokens) outcome.outputTokens = chunks; // no usage from this server: one token per chunk
    outcome.success = firstSeen;
    if (!firstSeen) outcome.error = 'the stream ended without any token';
  } catch (error) {
    outcome.error = (error as Error).message;
  }
  return outcome;
}

/** The `data:` payloads of a server-sent-event stream. */
async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trimStart()).join('\n');
      if (data) yield data;
    }
  }
}
