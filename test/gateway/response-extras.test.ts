// What vLLM-minded clients read besides the text: Keep-Alive advertised,
// X-Request-Id in and out (--enable-request-id-headers), stop_reason (the stop
// string or stop token id), usage.prompt_tokens_details.cached_tokens from the
// prefix cache, and the refusal fields OpenAI's schema requires.
import test from 'ava';
import { Vocabulary } from '../../actors/tokenizer/vocabulary.js';
import { KEEP_ALIVE_TIMEOUT_S } from '../../gateway/server.js';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

let gateway: TestGateway;
test.before(async () => {
  gateway = await startGateway({ gateway: { requestIdHeaders: true } });
});
test.after.always(async () => gateway?.close());

async function post(path: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ model: TEST_MODEL_NAME, ...body }) });
  return { response, json: (await response.json()) as Record<string, any> };
}

test('Keep-Alive: timeout is advertised, below uWS\'s 10 s idle timeout', async (t) => {
  const response = await fetch(`${gateway.url}/v1/models`);
  t.is(response.headers.get('keep-alive'), `timeout=${KEEP_ALIVE_TIMEOUT_S}`);
  t.true(KEEP_ALIVE_TIMEOUT_S < 10);
  await response.json();
});

test('X-Request-Id: echoed when given, made up when not, refused when malformed', async (t) => {
  const given = await post('/v1/completions', { prompt: 'hello', max_tokens: 1 }, { 'X-Request-Id': 'my-trace-42' });
  t.is(given.response.headers.get('x-request-id'), 'my-trace-42');
  const made = await post('/v1/completions', { prompt: 'hello', max_tokens: 1 });
  t.regex(made.response.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/);
  const models = await fetch(`${gateway.url}/v1/models`, { headers: { 'X-Request-Id': 'models-1' } });
  t.is(models.headers.get('x-request-id'), 'models-1', 'GET routes too');
  await models.json();
  const bad = await post('/v1/completions', { prompt: 'hello', max_tokens: 1 }, { 'X-Request-Id': 'x'.repeat(300) });
  t.is(bad.response.status, 400);
  t.regex(bad.json['error'].message, /X-Request-Id header must be 1 to 256 visible ASCII characters/);
});

test('stop_reason: the stop token id or stop string that ended the choice, null otherwise', async (t) => {
  const free = await post('/v1/completions', { prompt: 'The story begins', max_tokens: 12, temperature: 0, ignore_eos: true });
  t.is(free.json['choices'][0].finish_reason, 'length');
  t.is(free.json['choices'][0].stop_reason, null);
  // the greedy continuation's 4th token (its bytes from chat-style logprobs, its id from the vocabulary), to stop on it
  const withLogprobs = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'The story begins' }], max_tokens: 12, temperature: 0, ignore_eos: true, logprobs: true });
  const bytes: number[] = withLogprobs.json['choices'][0].logprobs.content[3].bytes;
  const vocab = Vocabulary.load(gateway.modelDir);
  const stopId = Array.from({ length: vocab.size }, (_, id) => id).find((id) => Buffer.from(vocab.tokenBytes(id)).equals(Buffer.from(bytes)))!;
  t.true(stopId !== undefined);
  const byToken = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'The story begins' }], max_tokens: 12, temperature: 0, ignore_eos: true, stop_token_ids: [stopId] });
  t.is(byToken.json['choices'][0].finish_reason, 'stop');
  t.is(byToken.json['choices'][0].stop_reason, stopId);
  t.true(byToken.json['usage'].completion_tokens <= 4);


  const text: string = free.json['choices'][0].text;
  const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
  t.true(stop.trim().length > 0, `a stop string from ${JSON.stringify(text)}`);
  const byString = await post('/v1/completions', { prompt: 'The story begins', max_tokens: 12, temperature: 0, ignore_eos: true, stop: [stop] });
  t.is(byString.json['choices'][0].finish_reason, 'stop');
  t.is(byString.json['choices'][0].stop_reason, stop);
  t.false((byString.json['choices'][0].text as string).includes(stop));

  const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 12, temperature: 0, ignore_eos: true, stream: false });
  const chatText: string = chat.json['choices'][0].message.content;
  const chatStop = chatText.slice(2, 4);
  const chatStopped = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 12, temperature: 0, ignore_eos: true, stop: chatStop });
  t.is(chatStopped.json['choices'][0].stop_reason, chatStop);
});

test('usage.prompt_tokens_details.cached_tokens counts the prompt tokens the prefix cache held', async (t) => {
  const prompt = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  const first = await post('/v1/completions', { prompt, max_tokens: 2, temperature: 0 });
  const promptTokens: number = first.json['usage'].prompt_tokens;
  t.true(promptTokens > 64, `${promptTokens} prompt tokens: more than two blocks`);
  t.deepEqual(first.json['usage'].prompt_tokens_details, { cached_tokens: 0 });
  const second = await post('/v1/completions', { prompt, max_tokens: 2, temperature: 0 });
  const cached: number = second.json['usage'].prompt_tokens_details.cached_tokens;
  t.true(cached > 0 && cached < promptTokens, `${cached} of ${promptTokens} cached`);
  t.is(cached % 32, 0, 'whole blocks (block size 32)');
});

test('chat messages and logprobs carry refusal: null', async (t) => {
  const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, logprobs: true, top_logprobs: 1 });
  t.is(chat.json['choices'][0].message.refusal, null);
  t.is(chat.json['choices'][0].logprobs.refusal, null);
  t.is(chat.json['choices'][0].logprobs.content.length, chat.json['usage'].completion_tokens);
});
