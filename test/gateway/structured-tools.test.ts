// Structured output and tool calling over HTTP, driven by the unmodified
// `openai` client: response_format json_schema / json_object, vLLM's
// structured_outputs and guided_* fields on both routes, streamed and not,
// with unconstrained requests alongside; every output validated with ajv.
// Tool calls: tool_choice "required" and a named function are enforced by a
// grammar, so the tiny random model returns calls whose arguments validate
// against the function's schema, with ids, finish_reason "tool_calls", and
// the same calls streamed as OpenAI streams them ("required" with parallel
// calls: an array of them); an agent loop's messages
// (assistant tool_calls with content null, tool results, developer) are
// accepted; "auto" needs --enable-auto-tool-choice --tool-call-parser.
import test from 'ava';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { engineIdle, eventually, startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false }));
const SCHEMAS = JSON.parse(readFileSync(new URL('../../../test/fixtures/structured/schemas.json', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;

let gateway: TestGateway;
let client: OpenAI;
let autoGateway: TestGateway;
let autoClient: OpenAI;

// Llama 3.1's own chat template (the generated model ships Llama 3's, which has no tools)
const LLAMA31_TEMPLATE = readFileSync(new URL('../../../test/fixtures/chat-templates/llama-3.1-instruct.jinja', import.meta.url), 'utf8');

test.before(async () => {
  gateway = await startGateway({ engine: { chatTemplate: LLAMA31_TEMPLATE } });
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  autoGateway = await startGateway({ engine: { chatTemplate: LLAMA31_TEMPLATE }, gateway: { toolCalls: { enableAutoToolChoice: true, toolCallParser: 'llama3_json' } } });
  autoClient = new OpenAI({ baseURL: `${autoGateway.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

test.after.always(async () => {
  await gateway?.close();
  await autoGateway?.close();
});

const user = (content: string) => [{ role: 'user' as const, content }];

/** Unconstrained requests that share the engine's batches meanwhile. */
function alongside(count: number) {
  return Array.from({ length: count }, (_, i) => client.completions.create({ model: TEST_MODEL_NAME, prompt: `noise ${i}`, max_tokens: 30, temperature: 1, seed: i, ignore_eos: true } as never));
}

async function streamedChat(body: Record<string, unknown>) {
  const stream = await client.chat.completions.create({ model: TEST_MODEL_NAME, ...body, stream: true } as never) as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>;
  let text = '';
  let finish: string | null = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish };
}

test('response_format json_schema: every schema validates, temperature 0 and 1, streamed and not, beside unconstrained requests', async (t) => {
  const noise = alongside(6);
  const runs = Object.entries(SCHEMAS).flatMap(([name, schema]) => [0, 1].flatMap((temperature) => [false, true].map(async (stream) => {
    const body = { messages: user(`Give ${name}`), max_tokens: 300, temperature, seed: 3, response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } } };
    const { text, finish } = stream
      ? await streamedChat(body)
      : await client.chat.completions.create({ model: TEST_MODEL_NAME, ...body } as never).then((r: OpenAI.Chat.Completions.ChatCompletion) => ({ text: r.choices[0]!.message.content ?? '', finish: r.choices[0]!.finish_reason }));
    const where = `${name}, temperature ${temperature}, ${stream ? 'streamed' : 'whole'}: ${text}`;
    t.is(finish, 'stop', where);
    t.true(ajv.validate(schema, JSON.parse(text)), `${where} ${ajv.errorsText()}`);
  })));
  await Promise.all([...runs, ...noise]);
  for (const n of await Promise.all(noise)) t.is(n.usage!.completion_tokens, 30);
  t.true(await eventually(() => engineIdle(gateway.url)));
});

test('vLLM fields on /v1/completions and chat: structured_outputs and guided_*', async (t) => {
  const complete = (extra: Record<string, unknown>) => client.completions.create({ model: TEST_MODEL_NAME, prompt: 'Answer:', max_tokens: 60, temperature: 1, seed: 4, ...extra } as never)
    .then((r: OpenAI.Completions.Completion) => r.choices[0]!);
  const choice = await complete({ structured_outputs: { choice: ['left', 'right'] } });
  t.true(['left', 'right'].includes(choice.text), choice.text);
  t.is(choice.finish_reason, 'stop');
  t.regex((await complete({ guided_regex: '[a-c]{3}[0-9]' })).text, /^[a-c]{3}[0-9]$/);
  t.true(['up', 'down'].includes((await complete({ guided_choice: ['up', 'down'] })).text));
  t.regex((await complete({ guided_grammar: 'root ::= "x" [0-9] [0-9]' })).text, /^x[0-9][0-9]$/);
  const json = await complete({ guided_json: SCHEMAS['enums'] });
  t.true(ajv.validate(SCHEMAS['enums']!, JSON.parse(json.text)), json.text);
  const text = await complete({ structured_outputs: { json: JSON.stringify(SCHEMAS['arrays']) } });
  t.true(ajv.validate(SCHEMAS['arrays']!, JSON.parse(text.text)), text.text);
  const chat = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('x'), max_tokens: 20, structured_outputs: { regex: 'ok|no' } } as never) as OpenAI.Chat.Completions.ChatCompletion;
  t.true(['ok', 'no'].includes(chat.choices[0]!.message.content!));
  const object = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('x'), max_tokens: 3, response_format: { type: 'json_object' } });
  t.regex(object.choices[0]!.message.content!, /^[[{"\-0-9tfn ]/, 'json_object: the reply starts a JSON value');
});

test('an invalid schema, regex or grammar is a 400 naming the field', async (t) => {
  const bad = async (body: Record<string, unknown>, param: string, message: RegExp) => {
    const error = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('x'), max_tokens: 5, ...body } as never), { instanceOf: OpenAI.BadRequestError });
    t.is(error!.param, param);
    t.regex(error!.message, message);
  };
  await bad({ response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'wrong' } } } }, 'response_format.json_schema.schema', /invalid or unsupported JSON schema/);
  await bad({ response_format: { type: 'yaml' } }, 'response_format.type', /must be "text", "json_object" or "json_schema"/);
  await bad({ structured_outputs: { regex: '[unclosed' } }, 'structured_outputs.regex', /invalid regular expression/);
  await bad({ guided_grammar: 'root ::= nowhere' }, 'guided_grammar', /invalid grammar/);
  await bad({ guided_choice: [] }, 'guided_choice', /non-empty list/);
  await bad({ guided_regex: 'a', guided_choice: ['b'] }, 'guided_choice', /only one of guided_regex, guided_choice/);
  await bad({ structured_outputs: { json: '{not json' } }, 'structured_outputs.json', /must be a JSON schema/);
  t.true(await eventually(() => engineIdle(gateway.url)));
});

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'unit', 'days'],
      additionalProperties: false,
    },
  },
};
const TIME = {
  type: 'function' as const,
  function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'], additionalProperties: false } },
};
const schemaOf = (name: string) => [WEATHER, TIME].find((f) => f.function.name === name)!.function.parameters;

test('forced tool calls (required, named) parse with the openai client; the arguments validate against the function schema', async (t) => {
  for (const temperature of [0, 1]) {
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_time' } }] as const) {
      const r = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('What is the weather in Paris?'), tools: [WEATHER, TIME], tool_choice, parallel_tool_calls: false, max_tokens: 200, temperature, seed: 8 });
      const choice = r.choices[0]!;
      t.is(choice.finish_reason, 'tool_calls');
      t.is(choice.message.content, null);
      const calls = choice.message.tool_calls!;
      t.is(calls.length, 1);
      const call = calls[0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
      t.regex(call.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
      t.is(call.type, 'function');
      if (typeof tool_choice === 'object') t.is(call.function.name, 'get_time');
      t.true(ajv.validate(schemaOf(call.function.name), JSON.parse(call.function.arguments)), `${call.function.name}(${call.function.arguments})`);
    }
  }
  // the tools reached the chat template: Llama 3.1's renders each one's JSON into the prompt
  const without = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('What is the weather in Paris?'), max_tokens: 1 });
  const withTools = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('What is the weather in Paris?'), tools: [WEATHER, TIME], tool_choice: 'required', max_tokens: 1 });
  t.true(withTools.usage!.prompt_tokens > without.usage!.prompt_tokens + 100, `${withTools.usage!.prompt_tokens} vs ${without.usage!.prompt_tokens}`);
});

test('streamed forced tool calls arrive as delta.tool_calls (id and name, then argument pieces as generated) and end with finish_reason tool_calls', async (t) => {
  const stream = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('weather?'), tools: [WEATHER], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, temperature: 1, seed: 2, stream: true });
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  let finish: string | null = null;
  let content = '';
  let argumentChunks = 0;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? '';
    for (const d of c.delta.tool_calls ?? []) {
      if (d.function?.arguments) argumentChunks++;
      calls[d.index] ??= { arguments: '' };
      if (d.id) calls[d.index]!.id = d.id;
      if (d.function?.name) calls[d.index]!.name = d.function.name;
      calls[d.index]!.arguments += d.function?.arguments ?? '';
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  t.is(finish, 'tool_calls');
  t.is(content, '', 'no content besides the calls');
  t.is(calls.length, 1);
  t.regex(calls[0]!.id!, /^chatcmpl-tool-/);
  t.is(calls[0]!.name, 'get_weather');
  t.true(ajv.validate(WEATHER.function.parameters, JSON.parse(calls[0]!.arguments)));
  t.true(argumentChunks > 1, `the arguments arrived as they were generated, in ${argumentChunks} chunks`);
});

/** A streamed chat's tool calls (per index: id, name, the arguments' pieces joined) and finish reason. */
async function streamedCalls(body: Record<string, unknown>) {
  const stream = await client.chat.completions.create({ model: TEST_MODEL_NAME, ...body, stream: true } as never) as unknown as AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>;
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const d of c.delta.tool_calls ?? []) {
      calls[d.index] ??= { arguments: '' };
      if (d.id) calls[d.index]!.id = d.id;
      if (d.function?.name) calls[d.index]!.name = d.function.name;
      calls[d.index]!.arguments += d.function?.arguments ?? '';
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { calls, finish };
}

test('"required" with parallel calls (the default) is a grammar-enforced array: each call validates, streamed or not; cut off by max_tokens, the complete calls are kept', async (t) => {
  const body = { messages: user('What is the weather in Paris?'), tools: [WEATHER, TIME], tool_choice: 'required', max_tokens: 300 };
  // at temperature 1 this model closes the array after a few calls for some seeds: the first of them
  let seed = 0;
  let ended: OpenAI.Chat.Completions.ChatCompletion | undefined;
  while (!ended && ++seed <= 12) {
    const r = await client.chat.completions.create({ model: TEST_MODEL_NAME, ...body, temperature: 1, seed } as never) as OpenAI.Chat.Completions.ChatCompletion;
    if (r.choices[0]!.finish_reason === 'tool_calls') ended = r;
    else t.is(r.choices[0]!.finish_reason, 'length');
  }
  if (!ended) return t.fail('no seed in 1..12 closed the array');
  const calls = ended.choices[0]!.message.tool_calls! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
  t.true(calls.length > 1, `${calls.length} calls`);
  t.is(new Set(calls.map((c) => c.id)).size, calls.length, 'each call its own id');
  for (const call of calls) t.true(ajv.validate(schemaOf(call.function.name), JSON.parse(call.function.arguments)), `${call.function.name}(${call.function.arguments})`);
  const streamed = await streamedCalls({ ...body, temperature: 1, seed });
  t.is(streamed.finish, 'tool_calls');
  t.deepEqual(streamed.calls.map((c) => [c.name, JSON.parse(c.arguments)]), calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), 'the stream carries the same calls');
  t.true(streamed.calls.every((c) => /^chatcmpl-tool-/.test(c.id ?? '')));
  // temperature 0: this model keeps adding calls until max_tokens
  const cut = await client.chat.completions.create({ model: TEST_MODEL_NAME, ...body, temperature: 0 } as never) as OpenAI.Chat.Completions.ChatCompletion;
  t.is(cut.choices[0]!.finish_reason, 'length');
  t.is(cut.choices[0]!.message.content, null);
  const kept = cut.choices[0]!.message.tool_calls! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
  t.true(kept.length >= 1);
  for (const call of kept) t.true(ajv.validate(schemaOf(call.function.name), JSON.parse(call.function.arguments)), `${call.function.name}(${call.function.arguments})`);
  const cutStream = await streamedCalls({ ...body, temperature: 0 });
  t.is(cutStream.finish, 'length');
  t.deepEqual(cutStream.calls.slice(0, kept.length).map((c) => [c.name, JSON.parse(c.arguments)]), kept.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), 'the complete calls streamed first');
});

test('an agent loop\'s messages are accepted: assistant tool_calls with content null, the tool\'s result, the developer role', async (t) => {
  const first = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('weather in Rome?'), tools: [WEATHER], tool_choice: 'required', max_tokens: 200, temperature: 0 });
  const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
  const second = await client.chat.completions.create({
    model: TEST_MODEL_NAME,
    messages: [
      { role: 'developer', content: 'Answer briefly.' },
      ...user('weather in Rome?'),
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' },
    ],
    tools: [WEATHER], tool_choice: 'none', max_tokens: 5, temperature: 0,
  });
  t.is(second.choices[0]!.message.role, 'assistant');
  t.is(typeof second.choices[0]!.message.content, 'string');
  const baseline = await client.chat.completions.create({ model: TEST_MODEL_NAME, messages: [{ role: 'developer', content: 'Answer briefly.' }, ...user('weather in Rome?')], max_tokens: 1 });
  t.true(second.usage!.prompt_tokens > baseline.usage!.prompt_tokens + 15, `the call and its result are in the prompt: ${second.usage!.prompt_tokens} vs ${baseline.usage!.prompt_tokens}`);
  const noId = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: [...user('x'), { role: 'tool', content: 'r' } as never], max_tokens: 2 }), { instanceOf: OpenAI.BadRequestError });
  t.regex(noId!.message, /tool_call_id/);
});

test('tool_choice auto: refused without the flags; with them the reply is parsed when it is a call, else it stays content', async (t) => {
  const refused = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('x'), tools: [WEATHER], max_tokens: 5 }), { instanceOf: OpenAI.BadRequestError });
  t.is(refused!.param, 'tool_choice');
  const plain = await autoClient.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('hi'), tools: [WEATHER], tool_choice: 'auto', max_tokens: 8, temperature: 0 });
  // the random model does not write a call on its own: its text comes back as content
  t.is(plain.choices[0]!.message.tool_calls?.length ?? 0, 0);
  t.is(typeof plain.choices[0]!.message.content, 'string');
  // streamed, a reply that cannot begin a call arrives as content while it is generated
  const stream = await autoClient.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('hi'), tools: [WEATHER], tool_choice: 'auto', max_tokens: 8, temperature: 0, stream: true, logprobs: true });
  const pieces: string[] = [];
  let logprobCount = 0;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c?.delta.content) pieces.push(c.delta.content);
    logprobCount += c?.logprobs?.content?.length ?? 0;
    t.is(c?.delta.tool_calls, undefined);
  }
  t.is(pieces.join(''), plain.choices[0]!.message.content ?? '', 'the same text as the whole reply');
  t.true(pieces.length > 1, `content in ${pieces.length} chunks`);
  t.is(logprobCount, plain.usage!.completion_tokens, 'a logprob per token, none lost to the held start');
  // a reply that is a call (here forced by guided_json, as a model would write it) is parsed into tool_calls
  const call = await autoClient.chat.completions.create({
    model: TEST_MODEL_NAME, messages: user('time?'), tools: [WEATHER, TIME], tool_choice: 'auto', max_tokens: 100, temperature: 0,
    guided_json: { type: 'object', properties: { name: { const: 'get_time' }, parameters: TIME.function.parameters }, required: ['name', 'parameters'], additionalProperties: false },
  } as never) as OpenAI.Chat.Completions.ChatCompletion;
  t.is(call.choices[0]!.finish_reason, 'tool_calls');
  const parsed = call.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
  t.is(parsed.function.name, 'get_time');
  t.true(ajv.validate(TIME.function.parameters, JSON.parse(parsed.function.arguments)));
  const unknown = await t.throwsAsync(client.chat.completions.create({ model: TEST_MODEL_NAME, messages: user('x'), tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } }, max_tokens: 5 }), { instanceOf: OpenAI.BadRequestError });
  t.regex(unknown!.message, /not among the tools/);
});

