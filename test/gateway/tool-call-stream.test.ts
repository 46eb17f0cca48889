// ForcedCallStream: a forced call's reply fed as it grows gives one header
// chunk (id, name) and argument pieces whose concatenation is exactly the
// parameters' JSON text, never the brace that closes the call; an array of
// calls ("required" with parallel calls) gives that per call, index by index.
import test from 'ava';
import { ForcedCallStream } from '../../gateway/tool-call-stream.js';

interface Piece { tool_calls: { index: number; id?: string; type?: string; function: { name?: string; arguments: string } }[] }

function run(reply: string, step: number, many = false): { headers: Piece[]; args: string[] } {
  const s = new ForcedCallStream(many);
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

test('an array of calls streams each call under its own index: header once, then its parameters; a cut-off array keeps what came', (t) => {
  const first = '{"city": "Paris, [x]", "days": 2}';
  const second = '{"zone": "UTC"}';
  const reply = `[{"name": "get_weather", "parameters": ${first}}, {"name": "get_time", "parameters": ${second}}]`;
  for (const step of [1, 4, 9, reply.length]) {
    const s = new ForcedCallStream(true);
    const pieces: Piece[] = [];
    for (let n = 1; n <= reply.length; n += step) pieces.push(...(s.feed(reply.slice(0, n)) as unknown as Piece[]));
    pieces.push(...(s.feed(reply) as unknown as Piece[]));
    const calls = pieces.map((p) => p.tool_calls[0]!);
    const headers = calls.filter((c) => c.id !== undefined);
    t.deepEqual(headers.map((h) => [h.index, h.function.name]), [[0, 'get_weather'], [1, 'get_time']], `step ${step}`);
    t.not(headers[0]!.id, headers[1]!.id);
    const args = (index: number) => calls.filter((c) => c.index === index && c.id === undefined).map((c) => c.function.arguments).join('');
    t.is(args(0), first, `step ${step}: call 0's pieces`);
    t.is(args(1), second, `step ${step}: call 1's pieces`);
    t.true(calls.findIndex((c) => c.index === 1) > calls.findLastIndex((c) => c.index === 0), 'call 0 is done before call 1 starts');
  }
  const cut = new ForcedCallStream(true);
  const sent = cut.feed(`[{"name": "get_weather", "parameters": ${first}}, {"name": "get_ti`) as unknown as Piece[];
  t.deepEqual(sent.map((p) => p.tool_calls[0]!.index), [0, 0], 'only the first call is out');
  t.deepEqual(new ForcedCallStream(true).feed('{"name": "get_weather", "parameters": {}}'), [], 'an array stream waits for its "["');
});
