// ForcedCallStream: a forced call's reply fed as it grows gives one header
// chunk (id, name) and argument pieces whose concatenation is exactly the
// parameters' JSON text, never the brace that closes the call.
import test from 'ava';
import { ForcedCallStream } from '../../gateway/tool-call-stream.js';

interface Piece { tool_calls: { index: number; id?: string; type?: string; function: { name?: string; arguments: string } }[] }

function run(reply: string, step: number): { headers: Piece[]; args: string[] } {
  const s = new ForcedCallStream();
  const pieces: Piece[] = [];
  for (let n = 1; n <= reply.length; n += step) pieces.push(...(s.feed(reply.slice(0, n)) as unknown as Piece[]));
  pieces.push(...(s.feed(reply) as unknown as Piece[]));
  return { headers: pieces.filter((p) => p.tool_calls[0]!.id !== undefined), args: pieces.filter((p) => p.tool_calls[0]!.id === undefined).map((p) => p.tool_calls[0]!.function.arguments) };
}

test('a forced call streams its name once, then its parameters piece by piece, up to their closing brace', (t) => {
  const params = '{"city": "Pa}ris \\"x\\"", "days": [1, {"a": 2}], "unit": "c"}';
  const reply = ` {"name": "get_weather", "parameters": ${params}}`;
  for (const step of [1, 3, 7, reply.length]) {
    const { headers, args } = run(reply, step);
    t.is(headers.length, 1, `step ${step}`);
    t.deepEqual(headers[0]!.tool_calls[0]!.function, { name: 'get_weather', arguments: '' });
    t.regex(headers[0]!.tool_calls[0]!.id!, /^chatcmpl-tool-/);
    t.is(args.join(''), params, `step ${step}: the pieces are the parameters' text`);
    t.true(args.every((a) => a.length > 0), 'no empty pieces');
    if (step === 1) t.true(args.length > 10, 'arguments arrive in many pieces');
  }
});

test('nothing is streamed until the name and the parameters\' brace are in; a reply that is not a call never starts', (t) => {
  const s = new ForcedCallStream();
  t.deepEqual(s.feed('{"name": "get_wea'), []);
  t.deepEqual(s.feed('{"name": "get_weather", "parameters": '), []);
  t.false(s.started);
  t.is(s.feed('{"name": "get_weather", "parameters": {').length, 2);
  t.true(s.started);
  const other = new ForcedCallStream();
  t.deepEqual(other.feed('Hello, {"name": "x", "parameters": {}}'), []);
  t.false(other.started);
});
