// The gateway driven by the official `openai` npm client, as users drive it:
// completions and chat, plain and streamed, usage, logprobs, echo, n, stop,
// errors, and a client that walks away mid-stream (its request aborts and its
// KV blocks come back). The server's text is checked against the engine's
// own output for the same tokens.
import test from 'ava';
import OpenAI from 'openai';
import { engineIdle, eventually, scrape, startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

let gateway: TestGateway;
let client: OpenAI;

test.before(async () => {
  gateway = await startGateway();
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

test.after.always(async () => {
  await gateway?.close();
});

const greedy = { temperature: 0, ignore_eos: true } as Record<string, unknown>;

test('models, health and version', async (t) => {
  const models = await client.models.list();
  t.is(models.data.length, 1);
  const card = models.data[0]! as unknown as Record<string, unknown>;
  t.is(card['id'], TEST_MODEL_NAME);
  t.is(card['object'], 'model');
  t.is(card['max_model_len'], 2048);
  t.is((await fetch(`${gateway.url}/health`)).status, 200);
  t.deepEqual(await (await fetch(`${gateway.url}/version`)).json(), { version: 'test' });
});

test('a completion has vLLM\'s shape, and its text is what the engine generates for the same tokens', async (t) => {
  const completion = await client.completions.create({ model: TEST_MODEL_NAME, prompt: 'The capital of France is', max_tokens: 6, ...greedy });
  t.regex(completion.id, /^cmpl-[0-9a-f]{32}$/);
  t.is(completion.object, 'text_completion');
  t.is(completion.model, TEST_MODEL_NAME);
  t.true(Number.isInteger(completion.created));
  t.is(completion.choices.length, 1);
  const choice = completion.choices[0]!;
  t.is(choice.index, 0);
  t.is(choice.finish_reason, 'length');
  t.is(choice.logprobs, null);
  const promptIds = await gateway.troupe.tokenize('The capital of France is');
  const [direct] = await gateway.troupe.generate([promptIds], { maxTokens: 6, temperature: 0, ignoreEos: true });
  t.is(choice.text, direct!.outputs[0]!.text);
  t.deepEqual(completion.usage, { prompt_tokens: promptIds.length, completion_tokens: 6, total_tokens: promptIds.length + 6, prompt_tokens_details: { cached_tokens: 0 } } as never); // 6 tokens: less than a block, never cached
});

test('prompts as a list, token ids and lists of token ids, with n: one choice per prompt and sample, in vLLM\'s order', async (t) => {
  const list = await client.completions.create({ model: TEST_MODEL_NAME, prompt: ['one', 'two', 'three'], max_tokens: 2, ...greedy });
  t.deepEqual(list.choices.map((c) => c.index), [0, 1, 2]);
  const ids = await client.completions.create({ model: TEST_MODEL_NAME, prompt: [791, 6864, 315], max_tokens: 3, ...greedy });
  t.is(ids.usage!.prompt_tokens, 3);
  const lists = await client.completions.create({ model: TEST_MODEL_NAME, prompt: [[791, 6864], [9906, 1917, 0]], max_tokens: 3, n: 2, seed: 11, temperature: 1, ignore_eos: true } as never);
  t.is(lists.choices.length, 4);
  t.deepEqual(lists.choices.map((c) => c.index), [0, 1, 2, 3]);
  t.is(lists.usage!.prompt_tokens, 5, 'each prompt counted once');
  t.is(lists.usage!.completion_tokens, 12);
  const single = await client.completions.create({ model: TEST_MODEL_NAME, prompt: [791, 6864], max_tokens: 3, seed: 11, temperature: 1, ignore_eos: true } as never);
  t.is(lists.choices[0]!.text, single.choices[0]!.text, 'sample 0 of n uses the request\'s seed');
});

test('echo with logprobs returns the prompt, then the completion, with OpenAI\'s logprobs', async (t) => {
  const completion = await client.completions.create({ model: TEST_MODEL_NAME, prompt: 'Hello world', max_tokens: 3, echo: true, logprobs: 2, ...greedy });
  const choice = completion.choices[0]!;
  t.true(choice.text.startsWith('Hello world'));
  const lp = choice.logprobs!;
  const promptTokens = completion.usage!.prompt_tokens;
  t.is(lp.tokens!.length, promptTokens + 3);
  t.is(lp.token_logprobs![0] as number | null, null, 'the first prompt token has no log-probability');
  t.is(lp.top_logprobs![0] as unknown, null);
  for (let i = 1; i < lp.tokens!.length; i++) {
    t.true(lp.token_logprobs![i]! <= 0);
    const top = lp.top_logprobs![i]!;
    t.true(Object.keys(top).length >= 1 && Object.keys(top).length <= 3, 'the token itself and at most 2 more');
    t.is(top[lp.tokens![i]!], lp.token_logprobs![i]!);
    t.true(lp.text_offset![i]! >= lp.text_offset![i - 1]!);
  }
  const scored = await client.completions.create({ model: TEST_MODEL_NAME, prompt: 'Hello world', max_tokens: 0, echo: true, logprobs: 0 });
  t.is(scored.choices[0]!.text, 'Hello world', 'max_tokens 0 with echo scores the prompt only');
  t.deepEqual(scored.choices[0]!.logprobs!.token_logprobs!.slice(1), lp.token_logprobs!.slice(1, promptTokens));
  t.is(scored.usage!.completion_tokens, 0);
});

test('a streamed completion gives the same text in chunks, a finish_reason, then the usage chunk', async (t) => {
  const params = { model: TEST_MODEL_NAME, prompt: 'Once upon a time', max_tokens: 12, ...greedy };
  const whole = await client.completions.create(params);
  const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let text = '';
  const finishes: (string | null)[] = [];
  let usageChunks = 0;
  let id = '';
  for await (const chunk of stream) {
    id ||= chunk.id;
    t.is(chunk.id, id, 'every chunk carries the request id');
    t.is(chunk.object, 'text_completion');
    if (chunk.choices.length === 0) {
      usageChunks++;
      t.deepEqual(chunk.usage, whole.usage);
      continue;
    }
    text += chunk.choices[0]!.text;
    finishes.push(chunk.choices[0]!.finish_reason);
  }
  t.is(text, whole.choices[0]!.text);
  t.is(finishes[finishes.length - 1], 'length');
  t.true(finishes.slice(0, -1).every((f) => f === null));
  t.is(usageChunks, 1);
});

test('chat: the reply, its logprobs, and the same reply streamed (role first, usage last)', async (t) => {
  const params = { model: TEST_MODEL_NAME, messages: [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi there' }], max_tokens: 8, ...greedy };
  const reply = await client.chat.completions.create({ ...params, logprobs: true, top_logprobs: 3 });
  t.regex(reply.id, /^chatcmpl-/);
  t.is(reply.object, 'chat.completion');
  const choice = reply.choices[0]!;
  t.is(choice.message.role, 'assistant');
  t.is(choice.finish_reason, 'length');
  t.is(choice.logprobs!.content!.length, 8);
  for (const entry of choice.logprobs!.content!) {
    t.is(entry.top_logprobs.length, 3);
    if (!entry.token.includes('\uFFFD')) t.is(Buffer.from(entry.bytes!).toString('utf8'), entry.token, 'bytes are the token\'s UTF-8');
  }
  t.is(choice.logprobs!.content!.map((e) => e.token).join(''), choice.message.content ?? '');
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  t.is(chunks[0]!.object, 'chat.completion.chunk');
  t.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' });
  const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
  t.is(content, choice.message.content ?? '');
  const last = chunks[chunks.length - 1]!;
  t.deepEqual(last.choices, []);
  t.deepEqual(last.usage, reply.usage);
  t.is(chunks[chunks.length - 2]!.choices[0]!.finish_reason, 'length');
});

test('a stop string ends the text before it with finish_reason "stop"', async (t) => {
  const base = { model: TEST_MODEL_NAME, prompt: 'Stop strings', max_tokens: 24, ...greedy };
  const free = (await client.completions.create(base)).choices[0]!.text;
  const stop = free.slice(Math.floor(free.length / 2), Math.floor(free.length / 2) + 3);
  t.true(stop.length === 3, `a stop string from "${free}"`);
  const stopped = (await client.completions.create({ ...base, stop: [stop] })).choices[0]!;
  t.is(stopped.finish_reason, 'stop');
  t.is(stopped.text, free.slice(0, free.indexOf(stop)));
});

test('errors come back as OpenAI errors with the HTTP status, type and param', async (t) => {
  const bad = await t.throwsAsync(client.completions.create({ model: TEST_MODEL_NAME, prompt: 'x', temperature: -1 }), { instanceOf: OpenAI.BadRequestError });
  t.is(bad!.status, 400);
  t.is(bad!.param, 'temperature');
  t.is(bad!.type, 'BadRequestError');
  const missing = await t.throwsAsync(client.completions.create({ model: 'no-such-model', prompt: 'x' }), { instanceOf: OpenAI.NotFoundError });
  t.is(missing!.message, '404 The model `no-such-model` does not exist.');
  const long = await t.throwsAsync(client.completions.create({ model: TEST_MODEL_NAME, prompt: [1, 2, 3, 4, 5], max_tokens: 2044 }), { instanceOf: OpenAI.BadRequestError });
  t.is(long!.message, "400 This model's maximum context length is 2048 tokens. However, you requested 2049 tokens (5 in the messages, 2044 in the completion). " +
    'Please reduce the length of the messages or completion.');
  const tooLongPrompt = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: [{ role: 'user', content: 'word '.repeat(2100) }] }), { instanceOf: OpenAI.BadRequestError });
  t.regex(tooLongPrompt!.message, /^400 This model's maximum context length is 2048 tokens\. However, you requested \d+ tokens in the messages, Please reduce the length of the messages\.$/);
  const tools = await t.throwsAsync(client.chat.completions.create({
    model: TEST_MODEL_NAME, messages: [{ role: 'user', content: 'x' }],
    tools: [{ type: 'function', function: { name: 'f', parameters: {} } }],
  }), { instanceOf: OpenAI.BadRequestError });
  t.is(tools!.param, 'tool_choice');
  t.regex(tools!.message, /"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser/);
  const format = await t.throwsAsync(client.chat.completions.create({
    model: TEST_MODEL_NAME, messages: [{ role: 'user', content: 'x' }],
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'bogus' } } },
  }), { instanceOf: OpenAI.BadRequestError });
  t.is(format!.param, 'response_format.json_schema.schema');
  const image = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }), { instanceOf: OpenAI.BadRequestError });
  t.regex(image!.message, /only text content parts/);
  const token = await t.throwsAsync(client.completions.create({ model: TEST_MODEL_NAME, prompt: [1, 999999] }), { instanceOf: OpenAI.BadRequestError });
  t.regex(token!.message, /out of range/);
});

test.serial('a client that goes away mid-stream aborts its request: nothing keeps running and its KV blocks return', async (t) => {
  const before = await scrape(gateway.url);
  const stream = await client.completions.create({ model: TEST_MODEL_NAME, prompt: 'a long story', max_tokens: 1500, stream: true, ...greedy });
  let chunks = 0;
  for await (const _ of stream) {
    if (++chunks === 3) break; // leaving the loop aborts the HTTP request
  }
  t.true(await eventually(() => engineIdle(gateway.url)), 'no request running, no KV block in use');
  const after = await scrape(gateway.url);
  t.is(after.value('vllm:request_success_total', { finished_reason: 'abort' }) - before.value('vllm:request_success_total', { finished_reason: 'abort' }), 1);
  t.true(after.value('vllm:generation_tokens_total') - before.value('vllm:generation_tokens_total') < 1500);
});

test.serial('/metrics counts tokens and requests and times them', async (t) => {
  const before = await scrape(gateway.url);
  await client.completions.create({ model: TEST_MODEL_NAME, prompt: [5, 6, 7, 8], max_tokens: 5, ...greedy });
  const after = await scrape(gateway.url);
  t.is(after.value('vllm:prompt_tokens_total') - before.value('vllm:prompt_tokens_total'), 4);
  t.is(after.value('vllm:generation_tokens_total') - before.value('vllm:generation_tokens_total'), 5);
  t.is(after.value('vllm:request_success_total', { finished_reason: 'length' }) - before.value('vllm:request_success_total', { finished_reason: 'length' }), 1);
  t.is(after.value('vllm:time_to_first_token_seconds_count') - before.value('vllm:time_to_first_token_seconds_count'), 1);
  t.is(after.value('vllm:inter_token_latency_seconds_count') - before.value('vllm:inter_token_latency_seconds_count'), 4);
  t.is(after.value('vllm:e2e_request_latency_seconds_count') - before.value('vllm:e2e_request_latency_seconds_count'), 1);
  t.true(after.value('vllm:prefix_cache_queries_total') > 0);
  for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:kv_cache_usage_perc', 'vllm:prefix_cache_hits_total', 'vllm:num_preemptions_total']) {
    t.true(after.series.has(`${name}{model_name="${TEST_MODEL_NAME}",engine="0"}`), name);
  }
});

test('/tokenize and /detokenize round-trip, with vLLM\'s shapes', async (t) => {
  const post = async (path: string, body: unknown) => (await fetch(`${gateway.url}${path}`, { method: 'POST', body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;
  const tokenized = await post('/tokenize', { model: TEST_MODEL_NAME, prompt: 'Hello world' });
  t.deepEqual(tokenized, { count: 3, max_model_len: 2048, tokens: [128000, 9906, 1917], token_strs: null });
  t.deepEqual(await post('/detokenize', { model: TEST_MODEL_NAME, tokens: [9906, 1917] }), { prompt: 'Hello world' });
  const chat = await post('/tokenize', { messages: [{ role: 'user', content: 'Hi' }], return_token_strs: true });
  t.is((chat['tokens'] as number[])[0], 128000);
  t.is((chat['token_strs'] as string[]).length, chat['count'] as number);
});
