// Every response kind, streamed and not, validated with ajv against the
// definitions of OpenAI's OpenAPI spec (test/fixtures/openai-schema/, whose
// README says where they come from). The two places where OpenAI's own API
// departs from its schema are checked as exactly that: the strict schema
// refuses them at the one field, the schema relaxed at that field accepts them.
import test from 'ava';
import { Ajv, type ValidateFunction } from 'ajv';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

type Json = Record<string, any>;

const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../../test/fixtures/openai-schema/responses.schema.json', import.meta.url)), 'utf8')) as { definitions: Json };

function validators(definitions: Json): (name: string) => ValidateFunction {
  const ajv = new Ajv({ strict: true, allErrors: true });
  ajv.addSchema({ $id: 'openai', definitions });
  return (name) => ajv.getSchema(`openai#/definitions/${name}`)!;
}

const strict = validators(fixture.definitions);

/** The definitions with OpenAI's two departures allowed: null first-token logprobs with echo, finish_reason null in completion chunks. */
const relaxed = validators((() => {
  const definitions = structuredClone(fixture.definitions);
  const choice = definitions['CreateCompletionResponse'].properties.choices.items;
  choice.properties.finish_reason = { anyOf: [choice.properties.finish_reason, { type: 'null' }] };
  const logprobs = choice.properties.logprobs.anyOf[0].properties;
  logprobs.token_logprobs.items = { anyOf: [logprobs.token_logprobs.items, { type: 'null' }] };
  logprobs.top_logprobs.items = { anyOf: [logprobs.top_logprobs.items, { type: 'null' }] };
  return definitions;
})());

function assertValid(t: { true(v: boolean, m?: string): void }, validate: ValidateFunction, body: unknown, what: string): void {
  const ok = validate(body) as boolean;
  t.true(ok, `${what}: ${JSON.stringify(validate.errors)}\n${JSON.stringify(body).slice(0, 600)}`);
}

/** The instance paths the strict schema refuses (each error once). */
function refusedAt(validate: ValidateFunction, body: unknown): string[] {
  validate(body);
  return [...new Set((validate.errors ?? []).map((e) => e.instancePath))].sort();
}

let gateway: TestGateway;
test.before(async () => {
  gateway = await startGateway();
});
test.after.always(async () => gateway?.close());

async function post(path: string, body: Json): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: TEST_MODEL_NAME, ...body }) });
  return { status: response.status, json: (await response.json()) as Json };
}

/** The data events of an SSE response, [DONE] left out. */
async function events(path: string, body: Json): Promise<Json[]> {
  const response = await fetch(`${gateway.url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ model: TEST_MODEL_NAME, ...body, stream: true }) });
  const text = await response.text();
  return text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)) as Json);
}

const chat = { messages: [{ role: 'user', content: 'Say something' }], max_tokens: 6, ignore_eos: true };

test('GET /v1/models is a ListModelsResponse', async (t) => {
  const models = (await (await fetch(`${gateway.url}/v1/models`)).json()) as Json;
  assertValid(t, strict('ListModelsResponse'), models, 'models');
});

test('chat completions, with and without logprobs, n > 1, are CreateChatCompletionResponses', async (t) => {
  for (const extra of [{}, { logprobs: true, top_logprobs: 2 }, { n: 2, temperature: 1, seed: 3 }, { stop: ['e'] }]) {
    const { status, json } = await post('/v1/chat/completions', { ...chat, ...extra });
    t.is(status, 200);
    assertValid(t, strict('CreateChatCompletionResponse'), json, JSON.stringify(extra));
  }
});

test('every streamed chat chunk (role, content, logprobs, finish, usage) is a CreateChatCompletionStreamResponse', async (t) => {
  const chunks = await events('/v1/chat/completions', { ...chat, n: 2, logprobs: true, top_logprobs: 1, stream_options: { include_usage: true, continuous_usage_stats: true } });
  t.true(chunks.length > 6);
  t.true(chunks.some((c) => c['choices'][0]?.delta.role === 'assistant'), 'role chunk');
  t.true(chunks.some((c) => c['choices'][0]?.logprobs?.content?.length), 'logprobs chunk');
  t.true(chunks.some((c) => c['choices'][0]?.finish_reason === 'length'), 'finish chunk');
  t.deepEqual(chunks.at(-1)!['choices'], [], 'usage chunk last');
  for (const [i, chunk] of chunks.entries()) assertValid(t, strict('CreateChatCompletionStreamResponse'), chunk, `chunk ${i}`);
});

test('completions, with logprobs, are CreateCompletionResponses', async (t) => {
  for (const extra of [{}, { logprobs: 2 }, { n: 2, temperature: 1, seed: 5 }, { prompt: ['one', 'two'] }]) {
    const { status, json } = await post('/v1/completions', { prompt: 'Once upon', max_tokens: 5, ignore_eos: true, ...extra });
    t.is(status, 200);
    assertValid(t, strict('CreateCompletionResponse'), json, JSON.stringify(extra));
  }
});

test('departure 1: with echo and logprobs the first prompt token has null logprobs, as OpenAI sends', async (t) => {
  const { json } = await post('/v1/completions', { prompt: 'Once upon', max_tokens: 3, echo: true, logprobs: 1 });
  t.is(json['choices'][0].logprobs.token_logprobs[0], null);
  t.deepEqual(refusedAt(strict('CreateCompletionResponse'), json), ['/choices/0/logprobs', '/choices/0/logprobs/token_logprobs/0', '/choices/0/logprobs/top_logprobs/0']);
  assertValid(t, relaxed('CreateCompletionResponse'), json, 'echo with logprobs');
});

test('departure 2: streamed completion chunks have finish_reason null until the last, as OpenAI sends', async (t) => {
  const chunks = await events('/v1/completions', { prompt: 'Once upon', max_tokens: 5, ignore_eos: true, logprobs: 1, stream_options: { include_usage: true } });
  const usage = chunks.pop()!;
  assertValid(t, strict('CreateCompletionResponse'), usage, 'usage chunk');
  t.is(usage['usage'].prompt_tokens_details.cached_tokens >= 0, true);
  const last = chunks.pop()!;
  t.is(last['choices'][0].finish_reason, 'length');
  assertValid(t, strict('CreateCompletionResponse'), last, 'the finishing chunk');
  t.true(chunks.length > 0);
  for (const [i, chunk] of chunks.entries()) {
    t.is(chunk['choices'][0].finish_reason, null);
    t.deepEqual(refusedAt(strict('CreateCompletionResponse'), chunk), ['/choices/0/finish_reason'], `chunk ${i}`);
    assertValid(t, relaxed('CreateCompletionResponse'), chunk, `chunk ${i}`);
  }
});

test('errors are ErrorResponses with a string code (the HTTP status), on every route', async (t) => {
  const failures = [
    await post('/v1/chat/completions', { ...chat, temperature: -1 }),
    await post('/v1/completions', { prompt: 'x', model: 'no-such-model' }),
    await post('/v1/completions', { prompt: 'x', max_tokens: 100_000 }),
    { status: 405, json: (await (await fetch(`${gateway.url}/v1/completions`)).json()) as Json },
    { status: 404, json: (await (await fetch(`${gateway.url}/v2/nothing`)).json()) as Json },
  ];
  for (const { status, json } of failures) {
    t.true(status >= 400);
    assertValid(t, strict('ErrorResponse'), json, `status ${status}`);
    t.is(json['error'].code, String(status));
  }
});

test('the strict schemas do refuse what OpenAI\'s clients would not parse', (t) => {
  t.false(strict('CreateChatCompletionResponse')({ id: 'x', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'hi' } }] }) as boolean, 'refusal missing');
  t.false(strict('ErrorResponse')({ error: { message: 'm', type: 'BadRequestError', param: null, code: 400 } }) as boolean, 'numeric code');
  t.false(strict('CreateCompletionResponse')({ id: 'x', object: 'text_completion', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: null } }) as boolean, 'null prompt_tokens_details');
});
