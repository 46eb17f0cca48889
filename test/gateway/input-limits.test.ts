// Request fields that could reach past their checks: chat_template_kwargs
// replacing what the server derives, integers past what the engine's 32-bit
// arrays hold, an unbounded logit_bias, and /tokenize outside admission and
// the API key. Each is refused with a 400 naming the field; what is allowed
// still works.
import test from 'ava';
import { startGateway, type TestGateway } from './helpers.js';
import { post, rawRequest } from './raw-http.js';

const KEY = 'input-limits-key';
const AUTH = { Authorization: `Bearer ${KEY}` };
const MAX_TOKENIZE = 2;
let gateway: TestGateway;

/** A Llama-3-style template that also reads a variable of the caller's, `greeting`. */
const TEMPLATE = '{{ bos_token }}{% if greeting is defined %}{{ greeting }}{% endif %}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n'
  + '{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}';

// serial: the tokenize lane is 2 wide, and these tests use it
test.before(async () => {
  gateway = await startGateway({ engine: { chatTemplate: TEMPLATE }, gateway: { apiKeys: [KEY], maxTokenizeRequests: MAX_TOKENIZE } });
});

test.after.always(async () => {
  await gateway?.close();
});

interface ErrorShape {
  error: { message: string; type: string; param: string | null; code: string };
}

async function call(path: string, body: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${gateway.url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** A 400 in OpenAI's error shape (vLLM's fields, code as a string) whose param is `param` and whose message names `named`. */
async function refused(t: import('ava').ExecutionContext, path: string, body: unknown, param: string, named = param.split('.').pop()!): Promise<void> {
  const { status, json } = await call(path, body);
  const error = (json as unknown as ErrorShape).error;
  t.is(status, 400, `${param}: ${JSON.stringify(json)}`);
  t.is(error?.type, 'BadRequestError', param);
  t.is(error?.code, '400', param); // OpenAI's schema: a string
  t.is(error?.param, param, param);
  t.true(error?.message.includes(named), `${param}: the message names ${named}: ${error?.message}`);
}

const chat = (extra: Record<string, unknown>) => ({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0, ...extra });
const completion = (extra: Record<string, unknown>) => ({ prompt: 'The capital of France is', max_tokens: 2, temperature: 0, ...extra });

test.serial('chat_template_kwargs cannot set what the server derives (messages, tools, add_generation_prompt, documents, special tokens)', async (t) => {
  const derived: Record<string, unknown> = {
    messages: [{ role: 'user', content: 'a much longer conversation the schema never saw' }],
    tools: [{ type: 'function', function: { name: 'f' } }],
    add_generation_prompt: false,
    continue_final_message: true,
    documents: [{ text: 'x' }],
    bos_token: '<|eot_id|>',
    eos_token: '',
    pad_token: 'x',
    raise_exception: 'x',
    none: 1,
    __proto__x: 1,
  };
  for (const [key, value] of Object.entries(derived)) {
    await refused(t, '/v1/chat/completions', chat({ chat_template_kwargs: { [key]: value } }), `chat_template_kwargs.${key}`);
    await refused(t, '/tokenize', { messages: [{ role: 'user', content: 'Hi' }], chat_template_kwargs: { date_string: '01 Jan 2025', [key]: value } }, `chat_template_kwargs.${key}`);
  }
  await refused(t, '/v1/chat/completions', chat({ chat_template_kwargs: { 'not a name': 1 } }), 'chat_template_kwargs.not a name');
  const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`v${i}`, i]));
  await refused(t, '/v1/chat/completions', chat({ chat_template_kwargs: many }), 'chat_template_kwargs', '64');
});

test.serial('chat_template_kwargs with variables of their own still works (and reaches the template)', async (t) => {
  const tokenize = async (kwargs?: Record<string, unknown>) => {
    const { status, json } = await call('/tokenize', { messages: [{ role: 'user', content: 'Hi' }], ...(kwargs ? { chat_template_kwargs: kwargs } : {}) });
    t.is(status, 200, JSON.stringify(json));
    return json['tokens'] as number[];
  };
  const plain = await tokenize();
  t.deepEqual(await tokenize({ my_custom_variable: 'unused by the template' }), plain, 'an unknown variable changes nothing');
  const greeted = await tokenize({ greeting: 'Hello world' });
  t.deepEqual(greeted, [plain[0]!, 9906, 1917, ...plain.slice(1)], 'the template put the greeting after <|begin_of_text|>');
  const { status, json } = await call('/v1/chat/completions', chat({ chat_template_kwargs: { greeting: 'Hello world', my_custom_variable: [1, 2] } }));
  t.is(status, 200, JSON.stringify(json));
  const usage = json['usage'] as { prompt_tokens: number };
  t.is(usage.prompt_tokens, greeted.length, 'the prompt is the one the validated messages render to');
  t.true(typeof ((json['choices'] as { message: { content: string } }[])[0]!.message.content) === 'string');
});

test.serial('integer parameters are range-checked before the engine narrows them', async (t) => {
  const big = 4294967297; // 2^32 + 1: wraps to 1 in an Int32Array
  const cases: [path: string, body: Record<string, unknown>, param: string, named?: string][] = [
    ['/v1/completions', completion({ top_k: big }), 'top_k'],
    ['/v1/completions', completion({ top_k: -2 }), 'top_k'],
    ['/v1/completions', completion({ top_k: 1.5 }), 'top_k'],
    ['/v1/completions', completion({ n: big }), 'n'],
    ['/v1/completions', completion({ max_tokens: big }), 'max_tokens'],
    ['/v1/completions', completion({ min_tokens: big }), 'min_tokens'],
    ['/v1/completions', completion({ logprobs: big }), 'logprobs'],
    ['/v1/completions', completion({ seed: 2 ** 60 }), 'seed'],
    ['/v1/completions', completion({ seed: -(2 ** 60) }), 'seed'],
    ['/v1/completions', completion({ best_of: big }), 'best_of'],
    ['/v1/completions', completion({ prompt_logprobs: big }), 'prompt_logprobs'],
    ['/v1/completions', completion({ truncate_prompt_tokens: big }), 'truncate_prompt_tokens'],
    ['/v1/completions', completion({ priority: big }), 'priority'],
    ['/v1/completions', completion({ stop_token_ids: [big] }), 'stop_token_ids.0', 'stop_token_ids'],
    ['/v1/completions', completion({ prompt: [1, big] }), 'prompt.1', 'prompt'],
    ['/v1/chat/completions', chat({ max_completion_tokens: big }), 'max_completion_tokens'],
    ['/v1/chat/completions', chat({ logprobs: true, top_logprobs: big }), 'top_logprobs'],
    ['/v1/chat/completions', chat({ top_k: big }), 'top_k'],
    ['/detokenize', { tokens: [1, big] }, 'tokens.1', 'tokens'],
  ];
  for (const [path, body, param, named] of cases) await refused(t, path, body, param, named);
  // the bounds themselves are allowed: a seed as large as JSON carries exactly, a large top_k
  const { status, json } = await call('/v1/completions', completion({ seed: -Number.MAX_SAFE_INTEGER, top_k: 2 ** 31 - 1, temperature: 1 }));
  t.is(status, 200, JSON.stringify(json));
});

test.serial('logit_bias: at most 300 entries, token ids of the vocabulary, values in [-100, 100]; and it biases', async (t) => {
  const entries = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [String(1000 + i), 1]));
  await refused(t, '/v1/completions', completion({ logit_bias: entries(301) }), 'logit_bias', '300');
  await refused(t, '/v1/completions', completion({ logit_bias: { abc: 1 } }), 'logit_bias.abc', 'abc');
  await refused(t, '/v1/completions', completion({ logit_bias: { '-5': 1 } }), 'logit_bias.-5', '-5');
  await refused(t, '/v1/completions', completion({ logit_bias: { '4294967297': 1 } }), 'logit_bias.4294967297', '4294967297');
  await refused(t, '/v1/completions', completion({ logit_bias: { '1000': 101 } }), 'logit_bias.1000', '1000');
  await refused(t, '/v1/completions', completion({ logit_bias: { '1000': '5' } }), 'logit_bias.1000', '1000');
  await refused(t, '/v1/chat/completions', chat({ logit_bias: { '200000': 5 } }), 'logit_bias', '200000'); // past the vocabulary
  const full = await call('/v1/completions', completion({ logit_bias: entries(300) }));
  t.is(full.status, 200, '300 entries are allowed');
  // a bias of +100 on one token makes greedy decoding pick it every time
  const forced = 9906;
  const biased = await call('/v1/completions', completion({ max_tokens: 3, logit_bias: { ...entries(299), [String(forced)]: 100 } }));
  t.is(biased.status, 200, JSON.stringify(biased.json));
  const expected = await call('/detokenize', { tokens: [forced, forced, forced] });
  t.is((biased.json['choices'] as { text: string }[])[0]!.text, expected.json['prompt'] as string);
});

test.serial('/tokenize and /detokenize need the API key', async (t) => {
  for (const [path, body] of [['/tokenize', { prompt: 'hi' }], ['/detokenize', { tokens: [1, 2] }]] as const) {
    const none = await call(path, body, {});
    t.is(none.status, 401, path);
    t.is((none.json as unknown as ErrorShape).error.type, 'UnauthorizedError', path);
    t.is((await call(path, body, { Authorization: 'Bearer wrong' })).status, 401, path);
    t.is((await call(path, body)).status, 200, path);
  }
});

test.serial('a flood of large /tokenize requests gets 429 past its lane while a completion still completes', async (t) => {
  // ~750 KB each, under the test server's 1 MiB body limit: tokenized in full,
  // then refused as longer than max_model_len (400)
  const text = 'word '.repeat(150_000);
  const body = JSON.stringify({ prompt: text });
  const flood = Array.from({ length: 24 }, () => rawRequest(gateway.port, post('/tokenize', body, AUTH), { timeoutMs: 120_000 }));
  const generation = call('/v1/completions', completion({ max_tokens: 4 }));
  const answers = await Promise.all(flood);
  const statuses = answers.map((a) => a?.status ?? 0);
  t.true(statuses.every((s) => s === 400 || s === 429), statuses.join(','));
  t.true(statuses.includes(429), `some of the flood was refused: ${statuses.join(',')}`);
  const served = answers.filter((a) => a?.status === 400);
  t.true(served.length >= 1, `the lane served some: ${statuses.join(',')}`);
  for (const a of served) t.regex((JSON.parse(a!.body) as ErrorShape).error.message, /maximum context length/);
  const refusedOne = answers.find((a) => a?.status === 429)!;
  t.is((JSON.parse(refusedOne.body) as ErrorShape).error.type, 'TooManyRequestsError');
  const { status, json } = await generation;
  t.is(status, 200, JSON.stringify(json));
  const choice = (json['choices'] as { text: string; finish_reason: string }[])[0]!;
  t.true(choice.text.length > 0, 'the completion has text');
  t.is(choice.finish_reason, 'length');
  // the lane is free again once the flood is answered
  t.is((await call('/tokenize', { prompt: 'hi' })).status, 200);
  const tooBig = await rawRequest(gateway.port, post('/tokenize', JSON.stringify({ prompt: 'x'.repeat(1 << 20) }), AUTH));
  t.is(tooBig?.status, 413, 'the body size limit applies to /tokenize');
});
