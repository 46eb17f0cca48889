// Fuzzing the gateway with 2,000+ malformed or hostile requests (seeded, so a
// failure reproduces): broken JSON, wrong types, huge numbers, deep nesting,
// invalid UTF-8, giant bodies, lying headers, odd paths, clients that hang up
// mid-body or mid-stream, and valid requests mixed in. Every request that
// waits for an answer must get one, and never a 5xx; afterwards the server
// still answers, nothing runs or waits in the engine and KV usage is back to
// its idle value. FUZZ_SEED=n explores another sequence; FUZZ_DEBUG=1 prints
// the first requests left unanswered.
import test from 'ava';
import { connect } from 'node:net';
import { SeededRandom } from '../../bench/serving/random.js';
import { engineIdle, eventually, scrape, startGateway, type TestGateway } from './helpers.js';
import { post, rawRequest, type RawResponse } from './raw-http.js';

const MAX_BYTES = 256 * 1024;
let gateway: TestGateway;

test.before(async () => {
  gateway = await startGateway({ gateway: { maxRequestBytes: MAX_BYTES } });
});

test.after.always(async () => {
  await gateway?.close();
});

/** The benchmark's seeded generator, with a pick. */
class Rng extends SeededRandom {
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const nest = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const HOSTILE_JSON = [
  '""', '"x"', `"${'y'.repeat(5000)}"`, '-1', '0', '1e308', '-1e308', '1e400', '9007199254740993', '1.5', '-0.0000001', 'true', 'false', 'null',
  '[]', '{}', '[[[]]]', '{"a":{"b":{"c":{}}}}', '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '[1, "2", null]', '[-5]', '[1e20]', nest(2000),
  '{"__proto__": {"polluted": 1}}', '"<|begin_of_text|>"', '[{"role": "user"}]', '{"type": "json_object"}', '[{"type": "function"}]',
];
const FIELDS = ['prompt', 'max_tokens', 'n', 'temperature', 'top_p', 'top_k', 'min_p', 'stop', 'seed', 'logprobs', 'echo', 'stream', 'stream_options',
  'logit_bias', 'stop_token_ids', 'model', 'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'min_tokens', 'ignore_eos',
  'skip_special_tokens', 'include_stop_str_in_output', 'response_format', 'tools', 'best_of', 'suffix', 'user', 'priority', 'add_special_tokens'];
const CHAT_FIELDS = ['messages', 'max_tokens', 'logprobs', 'top_logprobs', 'n', 'temperature', 'stop', 'seed', 'stream', 'stream_options', 'model',
  'tools', 'tool_choice', 'response_format', 'echo', 'add_generation_prompt', 'chat_template_kwargs', 'continue_final_message'];

/** A valid body with one field replaced by hostile JSON text (so values JSON.stringify cannot make are possible too). */
function mutated(rng: Rng, chat: boolean): string {
  const base: Record<string, string> = chat
    ? { messages: '[{"role": "user", "content": "hello"}]', max_tokens: '3', max_completion_tokens: '3' }
    : { prompt: '"hello"', max_tokens: '3' };
  const field = rng.pick(chat ? CHAT_FIELDS : FIELDS);
  base[field] = rng.pick(HOSTILE_JSON);
  if (field === 'max_tokens' && chat) delete base['max_tokens']; // max_completion_tokens keeps chats short
  return `{${Object.entries(base).map(([k, v]) => `"${k}": ${v}`).join(', ')}}`;
}

function brokenJson(rng: Rng): Buffer {
  const valid = Buffer.from(JSON.stringify({ prompt: 'hello there', max_tokens: 2, temperature: 0.5, stop: ['\n'] }));
  switch (rng.int(5)) {
    case 0: return valid.subarray(0, rng.int(valid.length)); // truncated
    case 1: { // a byte flipped
      const copy = Buffer.from(valid);
      copy[rng.int(copy.length)] = rng.int(256);
      return copy;
    }
    case 2: return Buffer.from(Array.from({ length: 1 + rng.int(200) }, () => rng.int(256))); // noise
    case 3: return Buffer.concat([valid, Buffer.from(rng.pick(['}', ']', ',', '{"a":1}', '\u0000']))]); // trailing garbage
    default: return Buffer.from(rng.pick(['{', '{"prompt"', '{"prompt":', "{'prompt': 'x'}", '{"prompt": "x",}', 'NaN', 'undefined', '{"prompt": "\\x"}']));
  }
}

function invalidUtf8(rng: Rng): Buffer {
  const bad = rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82], [0x80]]);
  return Buffer.concat([Buffer.from('{"prompt": "abc'), Buffer.from(bad), Buffer.from('def", "max_tokens": 2}')]);
}

/** What one fuzz case sends, and whether it waits for the answer. */
type Case = { kind: string; send: () => Promise<RawResponse | null>; expectAnswer: boolean; debug?: string };

function cases(rng: Rng, port: number): Case[] {
  const out: Case[] = [];
  const add = (kind: string, count: number, make: () => Omit<Case, 'kind'>) => {
    for (let i = 0; i < count; i++) out.push({ kind, ...make() });
  };
  const answer = (request: Buffer | string | (Buffer | string)[]) => ({ send: () => rawRequest(port, request, { timeoutMs: 30_000 }), expectAnswer: true, debug: String(request).slice(0, 300) });
  add('broken json', 500, () => answer(post(rng.pick(['/v1/completions', '/v1/chat/completions', '/tokenize']), brokenJson(rng))));
  add('wrong types (completions)', 450, () => answer(post('/v1/completions', mutated(rng, false))));
  add('wrong types (chat)', 300, () => answer(post('/v1/chat/completions', mutated(rng, true))));
  add('invalid utf-8', 150, () => answer(post(rng.pick(['/v1/completions', '/tokenize', '/detokenize']), invalidUtf8(rng))));
  add('deep nesting', 100, () => answer(post(rng.pick(['/v1/completions', '/v1/chat/completions']),
    `{"${rng.pick(['prompt', 'messages', 'stop', 'logit_bias', 'chat_template_kwargs'])}": ${nest(500 + rng.int(30_000))}}`)));
  add('giant body', 25, () => answer(post('/v1/completions', `{"prompt": "${'z'.repeat(MAX_BYTES + rng.int(100_000))}"}`)));
  // (uWS itself answers what it cannot parse: 400, or 505 when leftover bytes read as a bad request line)
  add('lying headers', 75, () => {
    const [header, body] = rng.pick([
      ['Content-Length: abc', '{}'], ['Content-Length: -5', ''], ['Content-Length: 99999999999', '{"prompt": "x"}'],
      ['Content-Type: text/plain\r\nContent-Length: 2', '{}'], ['Content-Length: 2', '{"prompt": "x"}'], ['Transfer-Encoding: chunked', 'zz\r\n'],
    ] as const);
    return answer(['POST /v1/completions HTTP/1.1', 'Host: x', header, '', body].join('\r\n'));
  });
  add('odd paths and methods', 150, () => answer(`${rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'POST'])} ${rng.pick([
    '/', '/v1', '/v1/completions/../models', '/v1/models?x=%00', '/%ff%fe', `/${'a'.repeat(2000)}`, '/metrics?format=json', '/v1/stream', '/health/',
  ])} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`));
  add('valid', 150, () => {
    const chat = rng.next() < 0.4;
    const body = chat
      ? { messages: [{ role: 'user', content: `hi ${rng.int(1000)}` }], max_tokens: 1 + rng.int(4), n: 1 + rng.int(2), logprobs: rng.next() < 0.5, top_logprobs: rng.int(3), stream: rng.next() < 0.5 }
      : { prompt: rng.next() < 0.5 ? `text ${rng.int(1000)}` : [1 + rng.int(5000), 2, 3], max_tokens: 1 + rng.int(4), echo: rng.next() < 0.3, logprobs: rng.int(3), stream: rng.next() < 0.5, seed: rng.int(100) };
    return answer(post(chat ? '/v1/chat/completions' : '/v1/completions', JSON.stringify(body)));
  });
  add('hang up mid-stream', 50, () => ({
    expectAnswer: false,
    send: () => {
      const chat = rng.next() < 0.5;
      const body = chat
        ? { messages: [{ role: 'user', content: 'stream me' }], max_tokens: 300, stream: true, ignore_eos: true }
        : { prompt: 'stream me', max_tokens: 300, stream: true, ignore_eos: true };
      return rawRequest(port, post(chat ? '/v1/chat/completions' : '/v1/completions', JSON.stringify(body)), { timeoutMs: 30_000, onData: (soFar) => soFar.includes('data: ') });
    },
  }));
  add('hang up mid-body', 50, () => ({
    expectAnswer: false,
    send: () => new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"prompt": "hel');
        setTimeout(() => { socket.destroy(); resolve(null); }, rng.int(20));
      });
      socket.on('error', () => resolve(null));
    }),
  }));
  return out;
}

test('2,000+ hostile requests: each answered (never a 5xx), then the server answers and the engine is idle', async (t) => {
  const rng = new Rng(Number(process.env['FUZZ_SEED'] ?? 20241126));
  const all = cases(rng, gateway.port);
  t.true(all.length >= 2000, `${all.length} cases`);
  // shuffled, 16 in flight at a time
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < all.length) {
      const c = all[next++]!;
      const response = await c.send();
      if (!c.expectAnswer) continue;
      if (!response) {
        if (process.env['FUZZ_DEBUG'] && failures.length < 3) console.log('NOANSWER', c.kind, JSON.stringify(c.debug), new Date().toISOString());
        failures.push(`${c.kind}: no answer`);
        continue;
      }
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status >= 500 && response.status !== 505) failures.push(`${c.kind}: ${response.status} ${response.body.slice(0, 200)}`);
    }
  }));
  t.deepEqual(failures, [], `statuses: ${JSON.stringify([...statuses])}`);
  t.true((statuses.get(400) ?? 0) > 1000, 'most were refused as bad requests');
  t.true((statuses.get(200) ?? 0) > 100, 'the valid ones were served');

  t.is((await fetch(`${gateway.url}/health`)).status, 200, 'the server still answers');
  const ok = await fetch(`${gateway.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'still here', max_tokens: 3 }) });
  t.is(ok.status, 200);
  t.true(await eventually(() => engineIdle(gateway.url), 30_000), 'nothing running or waiting, KV usage back to 0');
  const metrics = await scrape(gateway.url);
  t.is(metrics.value('vllm:num_requests_running'), 0);
  t.is(metrics.value('vllm:kv_cache_usage_perc'), 0);
  t.true(metrics.value('vllm:request_success_total', { finished_reason: 'abort' }) >= 50, 'the hung-up streams were aborted');
  t.is(gateway.server.ctx.admission.admitted, 0, 'every admission slot was released');
});
