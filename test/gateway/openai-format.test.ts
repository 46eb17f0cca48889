// The gateway's policy without a server: request bodies to engine parameters,
// the context-length rule and vLLM's wording, logprobs in OpenAI's formats,
// response and chunk shapes, admission, keys, seeds, metrics.
import test from 'ava';
import type { RequestDelta } from '../../actors/front/request-record.js';
import { Admission } from '../../gateway/admission.js';
import { ApiKeyCheck } from '../../gateway/auth.js';
import { SeedSource, ServedModels } from '../../gateway/context.js';
import { contextLengthError, resolveMaxTokens } from '../../gateway/context-length.js';
import { ApiError } from '../../gateway/errors.js';
import { chatLogprobs, codePointLength, completionLogprobs, type TokenTexts } from '../../gateway/logprobs-format.js';
import { GatewayMetrics } from '../../gateway/metrics.js';
import { ChatShaper, CompletionShaper } from '../../gateway/openai-format.js';
import { chatPlan, completionPlan, normalizeSeed, seedOf } from '../../gateway/request-mapping.js';
import { samplingDefaults } from '../../gateway/sampling-defaults.js';
import { chatRequestSchema, completionRequestSchema, parseBody } from '../../gateway/schemas.js';
import { parseMetrics } from './helpers.js';

/** Token i reads as "t<i>" (one byte per character), and 99 as a lone UTF-8 continuation byte. */
const texts: TokenTexts = {
  text: (id) => (id === 99 ? '\uFFFD' : `t${id}`),
  bytes: (id) => (id === 99 ? [0x80] : [...Buffer.from(`t${id}`)]),
};

const completion = (body: Record<string, unknown>) => completionPlan(parseBody(completionRequestSchema, body), {});
const chat = (body: Record<string, unknown>) => chatPlan(parseBody(chatRequestSchema, body), {});
const delta = (d: Partial<RequestDelta>): RequestDelta => ({ requestId: 'r', text: '', tokenIds: [], ...d });

test('completion bodies map to engine parameters in camelCase; unset fields stay unset or take the model\'s defaults', (t) => {
  const plan = completionPlan(parseBody(completionRequestSchema, {
    prompt: 'hi', max_tokens: 5, top_k: 20, min_p: 0.1, repetition_penalty: 1.2, stop: ['\n'], stop_token_ids: [7], ignore_eos: true,
    min_tokens: 2, skip_special_tokens: false, include_stop_str_in_output: true, logit_bias: { '42': 3 }, presence_penalty: 0.5, seed: -1,
  }), { temperature: 0.6, topP: 0.9 });
  t.deepEqual(plan.params, {
    temperature: 0.6, topP: 0.9, topK: 20, minP: 0.1, repetitionPenalty: 1.2, presencePenalty: 0.5, logitBias: { 42: 3 }, minTokens: 2,
    stop: ['\n'], stopTokenIds: [7], ignoreEos: true, includeStopStrInOutput: true, skipSpecialTokens: false,
  });
  t.is(plan.maxTokens, 5);
  t.is(plan.seed, normalizeSeed(-1));
  t.true(plan.seed! >= 0);
  t.deepEqual(plan.prompts, [{ kind: 'text', text: 'hi' }]);
  t.deepEqual(completion({ prompt: [1, 2] }).prompts, [{ kind: 'tokens', tokenIds: [1, 2] }]);
  t.deepEqual(completion({ prompt: ['a', 'b'] }).prompts.map((p) => p.kind), ['text', 'text']);
  t.deepEqual(completion({ prompt: [[1], [2, 3]] }).prompts, [{ kind: 'tokens', tokenIds: [1] }, { kind: 'tokens', tokenIds: [2, 3] }]);
  t.is(completion({ prompt: 'x', temperature: 0.2 }).params.temperature, 0.2);
  t.is(completion({ prompt: 'x', echo: true, logprobs: 3 }).params.promptLogprobs, 3, 'echo with logprobs asks for the prompt\'s');
  t.is(completion({ prompt: 'x', logprobs: 3 }).params.promptLogprobs, undefined);
});

test('chat bodies: logprobs / top_logprobs, max_completion_tokens over max_tokens, template options', (t) => {
  const plan = chat({ messages: [{ role: 'user', content: 'hi' }], logprobs: true, top_logprobs: 4, max_tokens: 9, max_completion_tokens: 7, chat_template_kwargs: { a: 1 } });
  t.is(plan.params.logprobs, 4);
  t.is(plan.maxTokens, 7);
  t.deepEqual(plan.tokenizeOptions, { addGenerationPrompt: true, addSpecialTokens: false, templateKwargs: { a: 1 } });
  t.is(chat({ messages: [{ role: 'user', content: 'hi' }], logprobs: true }).logprobs, 0);
  t.is(chat({ messages: [{ role: 'user', content: 'hi' }] }).logprobs, null);
  t.throws(() => chat({ messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 }), { message: /`logprobs` must be set to true/ });
  t.is(chat({ messages: [{ role: 'assistant', content: 'Sure, ' }], echo: true }).chatEchoText, 'Sure, ');
  t.is(chat({ messages: [{ role: 'user', content: 'x' }], echo: true }).chatEchoText, null);
});

test('unsupported features are refused by name; harmless forms pass', (t) => {
  for (const [field, value, param, message] of [
    ['tools', [{ type: 'function' }], 'tools', /tools are for \/v1\/chat\/completions/],
    ['response_format', { type: 'json_schema' }, 'response_format.json_schema', /must be an object with a name and a schema/],
    ['functions', [{}], 'functions', /not supported/],
    ['prompt_logprobs', 1, 'prompt_logprobs', /not supported/],
  ] as const) {
    const error = t.throws(() => completion({ prompt: 'x', [field]: value }), { instanceOf: ApiError });
    t.is(error!.param, param);
    t.regex(error!.message, message);
  }
  t.notThrows(() => completion({ prompt: 'x', tools: [], response_format: { type: 'text' }, tool_choice: 'none' }));
  t.throws(() => completion({ prompt: 'x', max_tokens: 0 }), { message: /echo/ });
  t.notThrows(() => completion({ prompt: 'x', max_tokens: 0, echo: true }));
  t.throws(() => completion({ prompt: 'x', stream_options: { include_usage: true } }), { message: /stream_options/ });
});

test('schema errors name the field by its path', (t) => {
  const error = t.throws(() => parseBody(chatRequestSchema, { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url' }] }] }), { instanceOf: ApiError });
  t.is(error!.param, 'messages.0.content.1.type');
  t.is(error!.status, 400);
  t.throws(() => parseBody(completionRequestSchema, [1]), { message: /JSON object/ });
});

test('max tokens: the client\'s, else 16 for completions and the rest of the context for chat; vLLM\'s wording when it does not fit', (t) => {
  t.is(resolveMaxTokens(completion({ prompt: 'x' }), 10, 100), 16);
  t.is(resolveMaxTokens(completion({ prompt: 'x', max_tokens: 90 }), 10, 100), 90);
  t.is(resolveMaxTokens(chat({ messages: [{ role: 'user', content: 'x' }] }), 10, 100), 90);
  t.is(resolveMaxTokens(completion({ prompt: 'x', max_tokens: 0, echo: true }), 10, 100), 1, 'scoring runs one step');
  const over = t.throws(() => resolveMaxTokens(completion({ prompt: 'x', max_tokens: 91 }), 10, 100));
  t.is(over!.message, "This model's maximum context length is 100 tokens. However, you requested 101 tokens (10 in the messages, 91 in the completion). " +
    'Please reduce the length of the messages or completion.');
  const full = t.throws(() => resolveMaxTokens(chat({ messages: [{ role: 'user', content: 'x' }] }), 100, 100));
  t.is(full!.message, "This model's maximum context length is 100 tokens. However, you requested 100 tokens in the messages, Please reduce the length of the messages.");
  t.is(contextLengthError(8, 5, 4).status, 400);
});

test('completion logprobs: the token and its top n as a dict, null for the first prompt token, offsets by token text', (t) => {
  const lp = completionLogprobs([
    { token: 1, logprob: null },
    { token: 2, logprob: -0.5, top: [{ id: 2, logprob: -0.5 }, { id: 3, logprob: -1 }, { id: 4, logprob: -2 }] },
    { token: 5, logprob: -Infinity, top: [{ id: 6, logprob: -0.1 }] },
  ], 2, texts, 10);
  t.deepEqual(lp, {
    tokens: ['t1', 't2', 't5'],
    token_logprobs: [null, -0.5, -9999],
    top_logprobs: [null, { t2: -0.5, t3: -1 }, { t5: -9999, t6: -0.1 }],
    text_offset: [10, 12, 14],
  });
  t.is(codePointLength('a😀b'), 3);
});

test('chat logprobs: token, logprob, bytes and top_logprobs (n of them)', (t) => {
  const lp = chatLogprobs([{ token: 99, logprob: -1, top: [{ id: 99, logprob: -1 }, { id: 7, logprob: -2 }] }], 1, texts);
  t.deepEqual(lp, { content: [{ token: '\uFFFD', logprob: -1, bytes: [0x80], top_logprobs: [{ token: '\uFFFD', logprob: -1, bytes: [0x80] }] }], refusal: null });
});

test('completion shaping: echo, choices per prompt and n, the finish chunk, usage', (t) => {
  const plan = completion({ prompt: ['p', 'q'], n: 2, echo: true, stream: true, stream_options: { include_usage: true, continuous_usage_stats: true } });
  const shaper = new CompletionShaper(plan, 'm', [{ tokenIds: [1, 2], text: 'P' }, { tokenIds: [3], text: 'Q' }], texts);
  t.is(shaper.choiceCount, 4);
  const first = shaper.onDelta({ index: 2, delta: delta({ text: 'x', tokenIds: [9] }) });
  t.is(first.length, 1);
  const chunk = first[0] as { id: string; object: string; model: string; choices: { index: number; text: string; finish_reason: null }[]; usage: { prompt_tokens: number; completion_tokens: number } };
  t.regex(chunk.id, /^cmpl-/);
  t.is(chunk.object, 'text_completion');
  t.deepEqual(chunk.choices, [{ index: 2, text: 'Qx', logprobs: null, finish_reason: null, stop_reason: null }] as never, 'echo: the prompt comes first');
  t.deepEqual(chunk.usage, { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } }, 'continuous usage is per choice');
  t.deepEqual(shaper.onDelta({ index: 2, delta: delta({ text: '', tokenIds: [8] }) }), [], 'nothing to send while the text is held back');
  const end = shaper.onDelta({ index: 2, delta: delta({ finishReason: 'stop' }) }) as { choices: { finish_reason: string }[] }[];
  t.is(end[0]!.choices[0]!.finish_reason, 'stop');
  const usage = shaper.usageChunk() as { choices: unknown[]; usage: { prompt_tokens: number; completion_tokens: number } };
  t.deepEqual(usage.choices, []);
  t.is(usage.usage.prompt_tokens, 3, 'each prompt once');
  t.is(usage.usage.completion_tokens, 2);
  const whole = shaper.response() as { choices: { index: number; text: string }[] };
  t.deepEqual(whole.choices.map((c) => c.text), ['P', 'P', 'Qx', 'Q']);
});

test('chat shaping: the role first, content deltas, an empty delta with the finish, the whole message', (t) => {
  const plan = chat({ messages: [{ role: 'user', content: 'hi' }], n: 2, stream: true });
  const shaper = new ChatShaper(plan, 'm', [{ tokenIds: [1, 2, 3], text: '' }], texts);
  const start = shaper.start() as { object: string; choices: { index: number; delta: unknown }[] }[];
  t.deepEqual(start.map((c) => c.choices[0]!.delta), [{ role: 'assistant', content: '' }, { role: 'assistant', content: '' }]);
  t.is(start[0]!.object, 'chat.completion.chunk');
  const content = shaper.onDelta({ index: 1, delta: delta({ text: 'hey', tokenIds: [5] }) }) as { choices: { delta: unknown; finish_reason: null }[] }[];
  t.deepEqual(content[0]!.choices[0]!.delta, { content: 'hey' });
  const end = shaper.onDelta({ index: 1, delta: delta({ finishReason: 'length' }) }) as { choices: { delta: unknown; finish_reason: string }[] }[];
  t.deepEqual(end[0]!.choices[0], { index: 1, delta: {}, logprobs: null, finish_reason: 'length', stop_reason: null } as never);
  t.is(shaper.usageChunk(), null, 'no usage chunk unless asked');
  const whole = shaper.response() as { object: string; choices: { message: { role: string; content: string } }[] };
  t.is(whole.object, 'chat.completion');
  t.deepEqual(whole.choices[1]!.message, { role: 'assistant', content: 'hey', refusal: null, tool_calls: [] } as never);
});

test('chat shaping with tool_choice auto: a reply that cannot begin a call streams as content at once; one that can is held to its end', (t) => {
  const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
  const plan = chatPlan(parseBody(chatRequestSchema, { messages: [{ role: 'user', content: 'hi' }], n: 3, stream: true, tools, tool_choice: 'auto' }), {}, { enableAutoToolChoice: true, toolCallParser: 'llama3_json' });
  const shaper = new ChatShaper(plan, 'm', [{ tokenIds: [1], text: '' }], texts);
  shaper.start();
  const contentOf = (chunks: Record<string, unknown>[]) => chunks.map((c) => (c as { choices: { delta: { content?: string } }[] }).choices[0]!.delta.content ?? '').join('');
  // choice 0: whitespace says nothing yet, then "Hi" cannot begin a call: all of it goes out
  t.deepEqual(shaper.onDelta({ index: 0, delta: delta({ text: ' ', tokenIds: [5] }) }), []);
  t.is(contentOf(shaper.onDelta({ index: 0, delta: delta({ text: 'Hi', tokenIds: [6] }) })), ' Hi');
  t.is(contentOf(shaper.onDelta({ index: 0, delta: delta({ text: ' there', tokenIds: [7] }) })), ' there');
  // choice 1: the start of <|python_tag|> and then a call: held, then sent as the call
  t.deepEqual(shaper.onDelta({ index: 1, delta: delta({ text: '<|python', tokenIds: [8] }) }), []);
  t.deepEqual(shaper.onDelta({ index: 1, delta: delta({ text: '_tag|>{"name": "f", "parameters": {}}', tokenIds: [9] }) }), []);
  const call = shaper.onDelta({ index: 1, delta: delta({ finishReason: 'stop' }) }) as { choices: { delta: { tool_calls?: { function: { name?: string } }[] }; finish_reason: string | null }[] }[];
  t.is(call[0]!.choices[0]!.delta.tool_calls![0]!.function.name, 'f');
  t.is(call.at(-1)!.choices[0]!.finish_reason, 'tool_calls');
  // choice 2: begins like a call but is not one: held, then sent as content
  t.deepEqual(shaper.onDelta({ index: 2, delta: delta({ text: '{not json', tokenIds: [10] }) }), []);
  const end = shaper.onDelta({ index: 2, delta: delta({ finishReason: 'length' }) });
  t.is(contentOf(end), '{not json');
  const ended = shaper.onDelta({ index: 0, delta: delta({ finishReason: 'stop' }) }) as { choices: { finish_reason: string }[] }[];
  t.is(ended.at(-1)!.choices[0]!.finish_reason, 'stop');
  const whole = shaper.response() as { choices: { message: { content: string | null } }[] };
  t.deepEqual(whole.choices.map((c) => c.message.content), [' Hi there', null, '{not json']);
});

test('admission: max_num_seqs running plus the pending allowance; 429 past it, 400 for what never fits, 503 when draining', (t) => {
  const admission = new Admission(2, 2);
  const a = admission.acquire(3);
  t.throws(() => admission.acquire(2), { message: /at capacity: 1 sequences are already waiting/ });
  const b = admission.acquire(1);
  t.is(admission.admitted, 4);
  a();
  a(); // releasing twice is harmless
  t.is(admission.admitted, 1);
  b();
  t.is((t.throws(() => admission.acquire(5)) as ApiError).status, 400);
  admission.drain();
  t.is((t.throws(() => admission.acquire(1)) as ApiError).status, 503);
});

test('API keys: Bearer only, /v1 and the tokenizer routes only, any of several keys', (t) => {
  const keys = new ApiKeyCheck(['one', 'two']);
  t.true(keys.guards('/v1/completions'));
  t.true(keys.guards('/tokenize'));
  t.true(keys.guards('/detokenize'));
  for (const open of ['/health', '/version', '/metrics']) t.false(keys.guards(open), open);
  t.notThrows(() => keys.check('Bearer two'));
  t.notThrows(() => keys.check('bearer   one'));
  for (const header of ['', 'one', 'Bearer three', 'Basic one']) t.is((t.throws(() => keys.check(header)) as ApiError).status, 401);
  t.false(new ApiKeyCheck([]).guards('/v1/models'));
});

test('models, seeds and sampling defaults', (t) => {
  const models = new ServedModels(['a', 'b'], '/m');
  t.is(models.resolve(undefined), 'a');
  t.is(models.resolve('b'), 'b');
  t.is((t.throws(() => models.resolve('c')) as ApiError).status, 404);
  const seeded = [new SeedSource(5), new SeedSource(5)].map((s) => [s.next(), s.next()]);
  t.deepEqual(seeded[0], seeded[1], '--seed makes unseeded requests reproducible');
  t.true(seeded[0]!.every((v) => Number.isSafeInteger(v) && v >= 0 && v < 2 ** 52));
  t.is(seedOf(2 ** 52 - 1, 1), 0);
  t.deepEqual(samplingDefaults({ temperature: 0.6, top_p: 0.9, do_sample: true, top_k: 'x' }, 'auto'), { temperature: 0.6, topP: 0.9 });
  t.deepEqual(samplingDefaults({ temperature: 0.6 }, 'vllm'), {});
});

test('metrics: vLLM names and labels; engine counters advance by their totals; timers feed the histograms', async (t) => {
  const metrics = new GatewayMetrics('m');
  const plan = { numBlocks: 1, blockSize: 16, tokens: 16, bytes: 1, maxModelLen: 16, maxConcurrency: 1, summary: '' };
  metrics.update({ plan, usage: 0.25, running: 2, waiting: 1, prefixQueries: 10, prefixHits: 4, preemptions: 1 } as never);
  metrics.update({ plan, usage: 0.5, running: 3, waiting: 0, prefixQueries: 15, prefixHits: 4, preemptions: 1 } as never);
  metrics.onRequestEvent({ type: 'submitted', requestId: 'r', promptTokens: 7 });
  metrics.onRequestEvent({ type: 'finished', requestId: 'r', reason: 'stop', outputTokens: 2 });
  const timer = metrics.timer(performance.now());
  timer.onDelta(delta({ tokenIds: [1] }));
  timer.onDelta(delta({ tokenIds: [2] }));
  timer.onDelta(delta({ finishReason: 'stop' }));
  const m = parseMetrics(await metrics.text());
  const labels = '{model_name="m",engine="0"}';
  t.is(m.series.get(`vllm:num_requests_running${labels}`), 3);
  t.is(m.series.get(`vllm:num_requests_waiting${labels}`), 0);
  t.is(m.series.get(`vllm:kv_cache_usage_perc${labels}`), 0.5);
  t.is(m.series.get(`vllm:prefix_cache_queries_total${labels}`), 15);
  t.is(m.series.get(`vllm:prefix_cache_hits_total${labels}`), 4);
  t.is(m.series.get(`vllm:num_preemptions_total${labels}`), 1);
  t.is(m.series.get(`vllm:prompt_tokens_total${labels}`), 7);
  t.is(m.series.get(`vllm:generation_tokens_total${labels}`), 2);
  t.is(m.value('vllm:request_success_total', { finished_reason: 'stop' }), 1);
  t.is(m.series.get(`vllm:time_to_first_token_seconds_count${labels}`), 1);
  t.is(m.series.get(`vllm:inter_token_latency_seconds_count${labels}`), 1);
  t.is(m.series.get(`vllm:e2e_request_latency_seconds_count${labels}`), 1);
});
