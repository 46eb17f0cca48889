// A forced call's text, as it is generated, as OpenAI streams calls.
//
// With tool_choice "required" (one call) or a named function, the grammar
// makes the reply one JSON call {"name": "<name>", "parameters": {...}}
// (tool-calls.ts), so the reply is known to be a call before it ends:
//
//   {"name": "get_weather", "parameters": {"city": "Paris"}}
//   |-- header: sent once the name and the parameters' "{" are in --|
//                                         |-- arguments: sent as they arrive --|
//                                                                             } closes the call: never sent
//
// chunk 1: {index, id, type: "function", function: {name, arguments: ""}}
// chunk k: {index, function: {arguments: <the next piece of the parameters' text>}}
// The pieces concatenated are the parameters' JSON text as generated.
import { jsonObjectEnd, newToolCallId } from './tool-calls.js';

const HEADER = /^\s*(?:<\|python_tag\|>)?\s*\{\s*"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"\s*,\s*"parameters"\s*:\s*(?=\{)/;

export class ForcedCallStream {
  readonly id = newToolCallId();
  private name: string | null = null;
  /** Where the parameters' text starts in the reply, and how much of it is sent. */
  private start = -1;
  private sent = 0;
  /** One past the parameters' closing brace, once seen (-1 before). */
  private end = -1;

  /** Whether the header went out (from then on the reply is streamed as this call). */
  get started(): boolean {
    return this.name !== null;
  }

  /** The delta.tool_calls payloads that the reply so far adds to what was sent. */
  feed(reply: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    if (this.name === null) {
      const m = HEADER.exec(reply);
      if (!m) return out;
      this.name = m[1]!;
      this.start = this.sent = m[0].length;
      out.push({ tool_calls: [{ index: 0, id: this.id, type: 'function', function: { name: this.name, arguments: '' } }] });
    }
    if (this.end < 0) {
      const end = jsonObjectEnd(reply.slice(this.start));
      if (end >= 0) this.end = this.start + end;
    }
    const limit = this.end >= 0 ? this.end : reply.length;
    if (limit > this.sent) {
      out.push({ tool_calls: [{ index: 0, function: { arguments: reply.slice(this.sent, limit) } }] });
      this.sent = limit;
    }
    return out;
  }
}
