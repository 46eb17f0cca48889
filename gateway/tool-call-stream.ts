// Forced calls' text, as it is generated, as OpenAI streams calls.
//
// With a named function, or tool_choice "required" without parallel calls,
// the grammar makes the reply one JSON call; with "required" and parallel
// calls, a JSON array of at least one (tool-calls.ts callGrammar). Either way
// the reply is known to be calls before it ends:
//
//   [{"name": "get_weather", "parameters": {"city": "Paris"}}, {"name": ...
//    |-- header: sent once the name and the parameters' "{" are in --|
//                                          |-- arguments: sent as they arrive --|
//                                                              } closes the call: never sent
//                                                                ", {" or "]": the next call, or the end
//
// per call k (index k, from 0):
//   chunk 1: {index, id, type: "function", function: {name, arguments: ""}}
//   chunk j: {index, function: {arguments: <the next piece of the parameters' text>}}
// The pieces of call k concatenated are its parameters' JSON text as generated.
import { jsonObjectEnd, newToolCallId } from './tool-calls.js';

const OPEN = /^\s*(?:<\|python_tag\|>)?\s*/;
const ARRAY_OPEN = /^\s*(?:<\|python_tag\|>)?\s*\[/;
const HEADER = /^\s*\{\s*"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"\s*,\s*"parameters"\s*:\s*(?=\{)/;
/** After a call's parameters, in an array: the call's "}" and "," (another call follows) or "]" (the last). */
const NEXT = /^\s*\}\s*([,\]])/;

interface StreamedCall {
  index: number;
  /** Where its parameters' text starts in the reply, and how much of it is sent. */
  start: number;
  sent: number;
  /** One past the parameters' closing brace, once seen (-1 before). */
  end: number;
}

export class ForcedCallStream {
  /** Where the next call's header is expected (-1: before the opening, not yet seen). */
  private next = -1;
  private current: StreamedCall | null = null;
  private calls = 0;
  private done = false;

  /** many: the reply is a JSON array of calls, else one call. */
  constructor(private readonly many = false) {}

  /** Whether a call's header went out (from then on the reply is streamed as calls). */
  get started(): boolean {
    return this.calls > 0;
  }

  /** The delta.tool_calls payloads that the reply so far adds to what was sent. */
  feed(reply: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    if (this.next < 0) {
      const open = (this.many ? ARRAY_OPEN : OPEN).exec(reply);
      if (!open) return out;
      this.next = open[0].length;
    }
    while (!this.done) {
      if (this.current === null) {
        const m = HEADER.exec(reply.slice(this.next));
        if (!m) break;
        const start = this.next + m[0].length;
        this.current = { index: this.calls++, start, sent: start, end: -1 };
        out.push({ tool_calls: [{ index: this.current.index, id: newToolCallId(), type: 'function', function: { name: m[1]!, arguments: '' } }] });
      }
      const call = this.current;
      if (call.end < 0) {
        const end = jsonObjectEnd(reply.slice(call.start));
        if (end >= 0) call.end = call.start + end;
      }
      const limit = call.end >= 0 ? call.end : reply.length;
      if (limit > call.sent) {
        out.push({ tool_calls: [{ index: call.index, function: { arguments: reply.slice(call.sent, limit) } }] });
        call.sent = limit;
      }
      if (call.end < 0) break;
      if (!this.many) {
        this.done = true;
        break;
      }
      const after = NEXT.exec(reply.slice(call.end));
      if (!after) break;
      if (after[1] === ']') this.done = true;
      this.next = call.end + after[0].length;
      this.current = null;
    }
    return out;
  }
}
