// Forced tool calls through the clients agent frameworks use, unmodified: the
// Vercel AI SDK (ai + @ai-sdk/openai-compatible) and LangChain (@langchain/openai)
// against `troupe serve`'s gateway on the tiny random model. The grammar makes
// even this model return a well-formed call; each client must hand back that
// call with arguments that validate against the function's schema. Their
// releases declare Node >= 22: on an older Node the test is skipped, naming why
// (`npm run test:node22` / `test:node24` run it).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { startGateway, TEST_MODEL_NAME, type TestGateway } from './helpers.js';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const onNode22 = NODE_MAJOR >= 22 ? test.serial : test.skip;
const ajv = new Ajv({ strict: false });
const LLAMA31_TEMPLATE = readFileSync(new URL('../../../test/fixtures/chat-templates/llama-3.1-instruct.jinja', import.meta.url), 'utf8');

const WEATHER_PARAMETERS = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['celsius', 'fahrenheit'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
} as const;

let gateway: TestGateway | undefined;

test.before(async () => {
  if (NODE_MAJOR >= 22) gateway = await startGateway({ engine: { chatTemplate: LLAMA31_TEMPLATE } });
});

test.after.always(async () => {
  await gateway?.close();
});

onNode22(`the AI SDK's generateText returns the forced call with valid input${NODE_MAJOR >= 22 ? '' : ' (skipped: ai@7 needs Node >= 22)'}`, async (t) => {
  const { generateText, tool, jsonSchema } = await import('ai');
  const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');
  const troupe = createOpenAICompatible({ name: 'troupe', baseURL: `${gateway!.url}/v1`, apiKey: 'unused' });
  for (const toolChoice of ['required', { type: 'tool', toolName: 'get_weather' }] as const) {
    const result = await generateText({
      model: troupe(TEST_MODEL_NAME),
      prompt: 'What is the weather in Paris?',
      tools: { get_weather: tool({ description: 'The weather in a city', inputSchema: jsonSchema(WEATHER_PARAMETERS as never) }) },
      toolChoice,
      maxOutputTokens: 200,
      temperature: 0,
      maxRetries: 0,
    });
    // "required" with parallel calls (the SDK's default) is an array of calls, which this
    // model at temperature 0 extends until max_tokens: the complete ones come back
    const named = typeof toolChoice === 'object';
    t.true(named ? result.toolCalls.length === 1 : result.toolCalls.length >= 1, `toolChoice ${JSON.stringify(toolChoice)}: ${result.toolCalls.length} calls`);
    for (const call of result.toolCalls) {
      t.is(call.toolName, 'get_weather');
      t.true(ajv.validate(WEATHER_PARAMETERS, call.input), JSON.stringify(call.input));
    }
    t.is(result.finishReason, named ? 'tool-calls' : 'length');
  }
});

onNode22(`LangChain's ChatOpenAI with bindTools returns the forced call with valid args${NODE_MAJOR >= 22 ? '' : ' (skipped: @langchain/openai@1.6 needs Node >= 22)'}`, async (t) => {
  const { ChatOpenAI } = await import('@langchain/openai');
  const chat = new ChatOpenAI({ model: TEST_MODEL_NAME, apiKey: 'unused', configuration: { baseURL: `${gateway!.url}/v1` }, maxTokens: 200, temperature: 0, maxRetries: 0 });
  const weather = { type: 'function' as const, function: { name: 'get_weather', description: 'The weather in a city', parameters: WEATHER_PARAMETERS } };
  for (const toolChoice of ['required', 'get_weather'] as const) {
    const reply = await chat.bindTools([weather], { tool_choice: toolChoice, parallel_tool_calls: false }).invoke('What is the weather in Paris?');
    t.is(reply.tool_calls?.length, 1, `tool_choice ${toolChoice}`);
    const call = reply.tool_calls![0]!;
    t.is(call.name, 'get_weather');
    t.true(ajv.validate(WEATHER_PARAMETERS, call.args), JSON.stringify(call.args));
    t.regex(call.id ?? '', /^chatcmpl-tool-/);
  }
});
