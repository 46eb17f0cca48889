// CORS (--allowed-origins / --allowed-methods / --allowed-headers): the
// policy on its own, then a live gateway: preflights answered or refused,
// response headers by Origin, and the WebSocket upgrade refusing an Origin
// the list does not hold.
import test from 'ava';
import WebSocket from 'ws';
import { CorsPolicy, DEFAULT_CORS, parseListFlag } from '../../gateway/cors.js';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';
import { rawRequest } from './raw-http.js';

const APP = 'https://app.example';
const EVIL = 'https://evil.example';

test('the default policy (vLLM\'s) allows every origin without credentials', (t) => {
  const policy = new CorsPolicy(DEFAULT_CORS);
  t.deepEqual(policy.responseHeaders(EVIL), { 'Access-Control-Allow-Origin': '*' });
  t.deepEqual(policy.responseHeaders(''), {}, 'no Origin, no CORS headers');
  const answer = policy.preflight(APP, 'POST', 'Authorization, Content-Type, X-Custom');
  t.true(answer.ok);
  if (answer.ok) {
    t.is(answer.headers['Access-Control-Allow-Headers'], 'authorization, content-type, x-custom', 'requested headers echoed under "*"');
    t.regex(answer.headers['Access-Control-Allow-Methods']!, /POST/);
  }
});

test('a restricted policy names what it refuses', (t) => {
  const policy = new CorsPolicy({ allowedOrigins: [APP], allowedMethods: ['GET', 'POST'], allowedHeaders: ['authorization'], allowCredentials: true });
  t.deepEqual(policy.responseHeaders(APP), { 'Access-Control-Allow-Origin': APP, 'Vary': 'Origin', 'Access-Control-Allow-Credentials': 'true' });
  t.deepEqual(policy.responseHeaders(EVIL), {});
  t.true(policy.preflight(APP, 'post', 'authorization, content-type').ok, 'content-type is safelisted');
  t.deepEqual(policy.preflight(EVIL, 'DELETE', 'x-secret'), { ok: false, refused: `origin ${EVIL}; method DELETE; headers x-secret` });
});

test('list flags: JSON lists as vLLM passes them, or comma-separated', (t) => {
  t.deepEqual(parseListFlag('--allowed-origins', '["https://a.example", "https://b.example"]'), ['https://a.example', 'https://b.example']);
  t.deepEqual(parseListFlag('--allowed-origins', 'https://a.example, https://b.example'), ['https://a.example', 'https://b.example']);
  t.throws(() => parseListFlag('--allowed-origins', '["a", 3]'), { message: /--allowed-origins must be a JSON list of non-empty strings/ });
  t.throws(() => parseListFlag('--allowed-methods', '[oops'), { message: /--allowed-methods must be a JSON list/ });
});

let gateway: TestGateway;
test.before(async () => {
  gateway = await startGateway({ gateway: { cors: { allowedOrigins: [APP], allowedMethods: ['*'], allowedHeaders: ['*'], allowCredentials: false } } });
});
test.after.always(async () => gateway?.close());

const preflight = (origin: string, path = '/v1/chat/completions') => rawRequest(gateway.port, [
  `OPTIONS ${path} HTTP/1.1`, 'Host: 127.0.0.1', `Origin: ${origin}`, 'Access-Control-Request-Method: POST',
  'Access-Control-Request-Headers: authorization, content-type', 'Connection: close', '', ''].join('\r\n'));

test('a preflight from an allowed origin is answered without auth, on every route', async (t) => {
  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/models']) {
    const response = (await preflight(APP, path))!;
    t.is(response.status, 200, path);
    t.is(response.headers['access-control-allow-origin'], APP, path);
    t.is(response.headers['access-control-allow-headers'], 'authorization, content-type', path);
    t.regex(response.headers['access-control-allow-methods'] ?? '', /POST/, path);
    t.is(response.headers['access-control-max-age'], '600', path);
  }
});

test('a preflight from another origin is refused with a 400 naming it', async (t) => {
  const response = (await preflight(EVIL))!;
  t.is(response.status, 400);
  t.false('access-control-allow-origin' in response.headers);
  const error = (JSON.parse(response.body) as { error: { message: string; code: string } }).error;
  t.regex(error.message, /CORS preflight refused: origin https:\/\/evil\.example not allowed/);
  t.is(error.code, '400');
});

test('responses carry Access-Control-Allow-Origin for an allowed Origin only', async (t) => {
  const body = JSON.stringify({ model: TEST_MODEL_NAME, prompt: 'hi', max_tokens: 2 });
  const allowed = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body, headers: { Origin: APP, 'Content-Type': 'application/json' } });
  t.is(allowed.status, 200);
  t.is(allowed.headers.get('access-control-allow-origin'), APP);
  t.is(allowed.headers.get('vary'), 'Origin');
  await allowed.json();
  const other = await fetch(`${gateway.url}/v1/models`, { headers: { Origin: EVIL } });
  t.is(other.status, 200, 'the server answers; the browser withholds it');
  t.is(other.headers.get('access-control-allow-origin'), null);
  await other.json();
  const missing = await fetch(`${gateway.url}/nope`, { headers: { Origin: APP } });
  t.is(missing.status, 404);
  t.is(missing.headers.get('access-control-allow-origin'), APP, 'errors are readable cross-origin too');
  await missing.text();
});

/** Opens /v1/stream with `origin` (none: no Origin header); resolves with the upgrade's outcome. */
function openSocket(origin?: string): Promise<{ opened: boolean; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/stream`, origin ? { origin } : {});
    ws.on('open', () => {
      ws.close();
      resolve({ opened: true });
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ opened: false, status: res.statusCode! });
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });
}

test('the WebSocket upgrade checks Origin against the same list', async (t) => {
  t.deepEqual(await openSocket(APP), { opened: true });
  t.deepEqual(await openSocket(), { opened: true }, 'no Origin: not a browser');
  t.deepEqual(await openSocket(EVIL), { opened: false, status: 403 });
});
