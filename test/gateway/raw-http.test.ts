// Raw HTTP against a gateway that requires an API key: malformed bodies,
// oversized bodies (declared and chunked), wrong methods and paths, the key
// check (and what stays open without it), exact SSE framing, keep-alive.
import test from 'ava';
import { Agent, request as httpRequest } from 'node:http';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from './helpers.js';
import { post, rawRequest } from './raw-http.js';

const KEY = 'sk-test-key';
const AUTH = { Authorization: `Bearer ${KEY}` };
let gateway: TestGateway;

test.before(async () => {
  gateway = await startGateway({ gateway: { apiKeys: [KEY], maxRequestBytes: 64 * 1024 } });
});

test.after.always(async () => {
  await gateway?.close();
});

const send = (request: Buffer | string | (Buffer | string)[]) => rawRequest(gateway.port, request);
const errorOf = (body: string) => (JSON.parse(body) as { error: { message: string; type: string; param: string | null; code: string } }).error;

test('malformed bodies get a 400 with an OpenAI error object saying what is wrong', async (t) => {
  const cases: [string, Buffer | string, RegExp][] = [
    ['broken JSON', '{"prompt": "x", ', /not valid JSON/],
    ['empty body', '', /empty/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x70, 0x72, 0x6f, 0x6d, 0x70, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /UTF-8/],
    ['a JSON array', '[1, 2]', /JSON object/],
    ['null', 'null', /JSON object/],
    ['no prompt', '{"max_tokens": 3}', /prompt/],
    ['wrong type', '{"prompt": "x", "max_tokens": "3"}', /max_tokens/],
    ['a huge number', '{"prompt": "x", "max_tokens": 1e308}', /max_tokens/],
    ['infinity', '{"prompt": "x", "temperature": 1e400}', /temperature/],
    ['a fraction where an integer goes', '{"prompt": "x", "n": 1.5}', /n/],
    ['n out of range', '{"prompt": "x", "n": 100000}', /n/],
    ['deep nesting', `{"prompt": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`, /prompt/],
    ['an empty prompt list', '{"prompt": []}', /prompt/],
    ['top_p of 0', '{"prompt": "x", "top_p": 0}', /top_p/],
    ['a bad stop', '{"prompt": "x", "stop": [""]}', /stop/],
    ['stream_options without stream', '{"prompt": "x", "stream_options": {"include_usage": true}}', /stream_options/],
    ['suffix', '{"prompt": "x", "suffix": "y"}', /suffix/],
  ];
  for (const [name, body, message] of cases) {
    const response = await send(post('/v1/completions', body, AUTH));
    t.is(response?.status, 400, name);
    const error = errorOf(response!.body);
    t.regex(error.message, message, name);
    t.is(error.type, 'BadRequestError', name);
    t.is(error.code, '400', name);
  }
  const chat = await send(post('/v1/chat/completions', '{"messages": [{"role": "robot", "content": "x"}]}', AUTH));
  t.is(chat?.status, 400);
  t.is(errorOf(chat!.body).param, 'messages.0.role');
});

test('a body over --max-request-bytes gets a 413, declared or chunked, and the connection closes', async (t) => {
  const big = `{"prompt": "${'a'.repeat(70 * 1024)}"}`;
  const declared = await send(post('/v1/completions', big, AUTH));
  t.is(declared?.status, 413);
  t.is(errorOf(declared!.body).type, 'RequestEntityTooLargeError');
  const head = ['POST /v1/completions HTTP/1.1', 'Host: x', 'Authorization: Bearer ' + KEY, 'Transfer-Encoding: chunked', '', ''].join('\r\n');
  const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  const chunked = await send([head, chunk(big.slice(0, 40_000)), chunk(big.slice(40_000)), '0\r\n\r\n']);
  t.is(chunked?.status, 413);
  const lying = await send(['POST /v1/completions HTTP/1.1', 'Host: x', 'Authorization: Bearer ' + KEY, 'Content-Length: 99999999', '', ''].join('\r\n'));
  t.is(lying?.status, 413, 'refused from the declared length, before any byte of the body');
});

test('the API key guards /v1/*, /tokenize and /detokenize (401 without it or with a wrong one); health, version and metrics stay open', async (t) => {
  const body = '{"prompt": [1, 2], "max_tokens": 1}';
  const none = await send(post('/v1/completions', body));
  t.is(none?.status, 401);
  t.is(errorOf(none!.body).type, 'UnauthorizedError');
  t.is((await send(post('/v1/completions', body, { Authorization: 'Bearer wrong' })))?.status, 401);
  t.is((await send(post('/v1/completions', body, { Authorization: KEY })))?.status, 401, 'the key without "Bearer"');
  t.is((await send(post('/v1/completions', body, AUTH)))?.status, 200);
  t.is((await fetch(`${gateway.url}/v1/models`)).status, 401);
  t.is((await fetch(`${gateway.url}/v1/models`, { headers: AUTH })).status, 200);
  for (const path of ['/health', '/version', '/metrics']) t.is((await fetch(`${gateway.url}${path}`)).status, 200, path);
  for (const [path, tokenizeBody] of [['/tokenize', '{"prompt": "hi"}'], ['/detokenize', '{"tokens": [1, 2]}']] as const) {
    t.is((await fetch(`${gateway.url}${path}`, { method: 'POST', body: tokenizeBody })).status, 401, path);
    t.is((await fetch(`${gateway.url}${path}`, { method: 'POST', body: tokenizeBody, headers: AUTH })).status, 200, path);
  }
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/stream`);
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', () => resolve(-1));
  });
  t.is(refused, 401, 'the WebSocket upgrade is refused without the key');
});

test('wrong method: 405; unknown path: 404; both as error objects', async (t) => {
  const get = await fetch(`${gateway.url}/v1/completions`, { headers: AUTH });
  t.is(get.status, 405);
  t.is(((await get.json()) as { error: { type: string } }).error.type, 'MethodNotAllowedError');
  const missing = await fetch(`${gateway.url}/v2/nothing`, { method: 'POST', body: '{}' });
  t.is(missing.status, 404);
  t.is(((await missing.json()) as { error: { code: string } }).error.code, '404');
});

test('SSE framing: "data: {json}\\n\\n" per chunk, then "data: [DONE]\\n\\n", as text/event-stream', async (t) => {
  const response = await send(post('/v1/completions', '{"prompt": [1, 2, 3], "max_tokens": 4, "stream": true, "temperature": 0, "ignore_eos": true}', AUTH));
  t.is(response?.status, 200);
  t.regex(response!.headers['content-type']!, /^text\/event-stream/);
  const events = response!.body.split('\n\n');
  t.is(events.pop(), '', 'the body ends with a blank line');
  t.is(events.pop(), 'data: [DONE]');
  t.true(events.length >= 5, 'four tokens and the finish');
  for (const event of events) {
    t.true(event.startsWith('data: '));
    const chunk = JSON.parse(event.slice(6)) as { object: string };
    t.is(chunk.object, 'text_completion');
  }
});

test('keep-alive: one request after another on the same connection', async (t) => {
  // Node's own HTTP client parses the responses; the agent keeps one socket and says when it reused it.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const body = '{"prompt": [1, 2], "max_tokens": 1}';
  const results: { status: number; reused: boolean }[] = [];
  for (let i = 0; i < 3; i++) {
    results.push(await new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gateway.port, path: '/v1/completions', method: 'POST', agent,
        headers: { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end(body);
    }));
  }
  t.deepEqual(results, [{ status: 200, reused: false }, { status: 200, reused: true }, { status: 200, reused: true }]);
});
