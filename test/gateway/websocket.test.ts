// WebSocket /v1/stream with the `ws` client: the same chunks as SSE, several
// requests on one socket, cancel, bad messages, and a socket closed
// mid-stream (its requests abort, the engine goes idle).
import test from 'ava';
import WebSocket from 'ws';
import { engineIdle, eventually, startGateway, type TestGateway } from './helpers.js';

let gateway: TestGateway;

test.before(async () => {
  gateway = await startGateway();
});

test.after.always(async () => {
  await gateway?.close();
});

interface Message {
  id: string | null;
  data?: { id: string; object: string; choices: { index: number; text?: string; delta?: { content?: string; role?: string }; finish_reason: string | null }[]; usage?: unknown };
  done?: boolean;
  error?: { message: string; code: string; param: string | null };
}

/** An open socket whose messages are collected by id. */
async function socket(t: { teardown(fn: () => void): void }) {
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/stream`);
  t.teardown(() => ws.terminate());
  const messages: Message[] = [];
  const waiters: (() => void)[] = [];
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()) as Message);
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const until = async (done: () => boolean) => {
    while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  return {
    ws, messages,
    send: (message: unknown) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    of: (id: string) => messages.filter((m) => m.id === id),
    /** Waits for the done (or error) message of `id`. */
    finished: (id: string) => until(() => messages.some((m) => m.id === id && (m.done || m.error))),
    until,
  };
}

async function sse(body: unknown): Promise<unknown[]> {
  const response = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...(body as object), stream: true }) });
  const text = await response.text();
  return text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)) as unknown);
}

const strip = (chunk: unknown) => {
  const { id: _id, created: _created, ...rest } = chunk as Record<string, unknown>;
  return rest;
};

test('a completion over the socket streams the same chunks as SSE, then done', async (t) => {
  const body = { prompt: [10, 20, 30], max_tokens: 6, temperature: 0, ignore_eos: true, stream_options: { include_usage: true } };
  const s = await socket(t);
  s.send({ id: 'a', path: '/v1/completions', body });
  await s.finished('a');
  const mine = s.of('a');
  t.true(mine[mine.length - 1]!.done);
  const chunks = mine.filter((m) => m.data).map((m) => m.data!);
  t.deepEqual(chunks.map(strip), (await sse(body)).map(strip));
  t.deepEqual(chunks[chunks.length - 1]!.choices, [], 'the usage chunk, as asked');
});

test('two requests on one socket interleave under their ids, and both finish', async (t) => {
  const s = await socket(t);
  s.send({ id: 'chat', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, ignore_eos: true } });
  s.send({ id: 'text', path: '/v1/completions', body: { prompt: 'Hello', max_tokens: 8, ignore_eos: true, stream: false } });
  await s.finished('chat');
  await s.finished('text');
  const chat = s.of('chat').filter((m) => m.data);
  t.deepEqual(chat[0]!.data!.choices[0]!.delta, { role: 'assistant', content: '' });
  t.is(chat[chat.length - 1]!.data!.choices[0]!.finish_reason, 'length');
  const text = s.of('text').filter((m) => m.data);
  t.true(text.length > 1, 'the socket always streams, whatever "stream" says');
  t.is(text[text.length - 1]!.data!.object, 'text_completion');
});

test('cancel ends a request with finish_reason "abort", then done; the engine goes idle', async (t) => {
  const s = await socket(t);
  s.send({ id: 'long', path: '/v1/completions', body: { prompt: 'x', max_tokens: 1500, ignore_eos: true } });
  await s.until(() => s.of('long').length >= 3);
  s.send({ id: 'long', cancel: true });
  await s.finished('long');
  const mine = s.of('long');
  t.true(mine[mine.length - 1]!.done);
  t.is(mine[mine.length - 2]!.data!.choices[0]!.finish_reason, 'abort');
  t.true(mine.length < 1500);
  t.true(await eventually(() => engineIdle(gateway.url)));
  s.send({ id: 'long', cancel: true }); // cancelling a finished request is a no-op
});

test('bad messages get an error naming what is wrong; the socket stays usable', async (t) => {
  const s = await socket(t);
  s.send('not json');
  s.send({ id: 'x' });
  s.send({ id: 'bad', path: '/v1/completions', body: { prompt: 'x', temperature: 'hot' } });
  s.send({ id: 'nomodel', path: '/v1/completions', body: { prompt: 'x', model: 'nope' } });
  await s.finished('bad');
  await s.finished('nomodel');
  await s.until(() => s.messages.filter((m) => m.id === null).length === 2);
  const anonymous = s.messages.filter((m) => m.id === null);
  t.regex(anonymous[0]!.error!.message, /not valid JSON/);
  t.is(anonymous[1]!.error!.code, '400');
  t.is(s.of('bad')[0]!.error!.param, 'temperature');
  t.is(s.of('nomodel')[0]!.error!.code, '404');
  s.send({ id: 'ok', path: '/v1/completions', body: { prompt: 'x', max_tokens: 2 } });
  await s.finished('ok');
  t.true(s.of('ok').pop()!.done);
});

test('a socket closed mid-stream aborts its requests in the engine', async (t) => {
  const s = await socket(t);
  s.send({ id: 'one', path: '/v1/completions', body: { prompt: 'a', max_tokens: 1500, ignore_eos: true } });
  s.send({ id: 'two', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'b' }], max_tokens: 1500, ignore_eos: true } });
  await s.until(() => s.of('one').length >= 2 && s.of('two').length >= 2);
  s.ws.terminate();
  t.true(await eventually(() => engineIdle(gateway.url)));
});
