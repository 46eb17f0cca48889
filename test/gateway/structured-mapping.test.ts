// The request fields as grammar specs (gateway/structured-output.ts) and the
// llama3_json reply parser (gateway/tool-calls.ts), without a server.
import test from 'ava';
import { ApiError } from '../../gateway/errors.js';
import { structuredOutputOf } from '../../gateway/structured-output.js';
import { callGrammar, parseToolCalls, templateMessage, toolPlanOf } from '../../gateway/tool-calls.js';

const schema = { type: 'object', properties: { a: { type: 'integer' } } };

test('each structured-output field maps to its grammar spec, with the field it came from', (t) => {
  t.deepEqual(structuredOutputOf({ response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strict: true } } }), { spec: { type: 'json_schema', schema }, field: 'response_format.json_schema.schema' });
  t.deepEqual(structuredOutputOf({ response_format: { type: 'json_object' } })?.spec, { type: 'json_object' });
  t.is(structuredOutputOf({ response_format: { type: 'text' } }), null);
  t.deepEqual(structuredOutputOf({ structured_outputs: { json: JSON.stringify(schema) } })?.spec, { type: 'json_schema', schema });
  t.deepEqual(structuredOutputOf({ structured_outputs: { regex: 'a+' } }), { spec: { type: 'regex', pattern: 'a+' }, field: 'structured_outputs.regex' });
  t.deepEqual(structuredOutputOf({ structured_outputs: { choice: ['x', 'y'] } })?.spec, { type: 'choice', choices: ['x', 'y'] });
  t.deepEqual(structuredOutputOf({ structured_outputs: { grammar: 'root ::= "a"' } })?.spec, { type: 'grammar', grammar: 'root ::= "a"' });
  t.deepEqual(structuredOutputOf({ guided_json: schema })?.field, 'guided_json');
  t.deepEqual(structuredOutputOf({ guided_choice: ['p'] })?.spec, { type: 'choice', choices: ['p'] });
  t.is(structuredOutputOf({}), null);
  const two = t.throws(() => structuredOutputOf({ guided_json: schema, response_format: { type: 'json_object' } }), { instanceOf: ApiError });
  t.regex(two!.message, /only one of response_format, guided_json/);
  t.throws(() => structuredOutputOf({ structured_outputs: { regex: 'a', choice: ['b'] } }), { message: /exactly one of json, regex, choice, grammar, got regex, choice/ });
  t.throws(() => structuredOutputOf({ response_format: { type: 'json_schema', json_schema: { name: 'has space', schema } } }), { message: /json_schema\.name must be/ });
});

const functions = [{ name: 'f', parameters: { type: 'object' } }, { name: 'g', parameters: { type: 'object' } }];

test('llama3_json replies: one call, <|python_tag|>, several separated by ";", parameters or arguments; anything else is content', (t) => {
  const one = parseToolCalls(' {"name": "f", "parameters": {"x": 1}} ', { functions, parallel: true })!;
  t.is(one.length, 1);
  t.deepEqual(one[0]!.function, { name: 'f', arguments: '{"x":1}' });
  t.regex(one[0]!.id, /^chatcmpl-tool-[0-9a-f]{32}$/);
  t.is(parseToolCalls('<|python_tag|>{"name": "g", "arguments": {}}', { functions, parallel: true })![0]!.function.name, 'g');
  const two = parseToolCalls('{"name": "f", "parameters": {"s": "a;}"}}; {"name": "g", "parameters": {}}', { functions, parallel: true })!;
  t.deepEqual(two.map((c) => c.function.name), ['f', 'g']);
  t.notDeepEqual(two[0]!.id, two[1]!.id);
  t.is(parseToolCalls('{"name": "f", "parameters": {}}; {"name": "g", "parameters": {}}', { functions, parallel: false })!.length, 1);
  const arr = parseToolCalls('[{"name": "f", "parameters": {"x": 1}}, {"name": "g", "parameters": {}}]', { functions, parallel: true })!;
  t.deepEqual(arr.map((c) => c.function.name), ['f', 'g']);
  t.is(parseToolCalls('[{"name": "f", "parameters": {}}, {"name": "g", "parameters": {}}]', { functions, parallel: false })!.length, 1);
  for (const text of ['[]', '[{"name": "zzz", "parameters": {}}]', '[{"name": "f", "parameters": {}}']) t.is(parseToolCalls(text, { functions, parallel: true }), null, text);
  // cut off by max_tokens inside a forced array: the complete calls are kept
  const cut = parseToolCalls('[{"name": "f", "parameters": {"x": 1}}, {"name": "g", "parameters": {"y', { functions, parallel: true }, true)!;
  t.deepEqual(cut.map((c) => c.function), [{ name: 'f', arguments: '{"x":1}' }]);
  t.is(parseToolCalls('[{"name": "f", "parameters": {}},', { functions, parallel: true }, true)!.length, 1);
  for (const text of ['[{"name": "f", "param', '[', '{"name": "f", "parameters": {}}', '[{"name": "zzz", "parameters": {}}, {']) t.is(parseToolCalls(text, { functions, parallel: true }, true), null, `cut off: ${text}`);
  for (const text of ['hello', '{"name": "zzz", "parameters": {}}', '{"name": "f", "parameters": [1]}', '{"name": "f", "parameters": {}} trailing', '{"name": "f"', '']) {
    t.is(parseToolCalls(text, { functions, parallel: true }), null, text);
  }
});

test('tool plans: none, auto (needs the flags), required and named get their grammar; bad tools name the field', (t) => {
  const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }, { type: 'function', function: { name: 'g' } }];
  const flags = { enableAutoToolChoice: true, toolCallParser: 'llama3_json' as const };
  t.is(toolPlanOf({ tools, tool_choice: 'none' }, flags), null);
  t.is(toolPlanOf({ tools, tool_choice: 'auto' }, flags)!.grammar, null);
  t.throws(() => toolPlanOf({ tools }, { enableAutoToolChoice: false, toolCallParser: null }), { message: /requires --enable-auto-tool-choice/ });
  const named = toolPlanOf({ tools, tool_choice: { type: 'function', function: { name: 'f' } } }, flags)!;
  t.deepEqual(named.grammar, callGrammar([{ name: 'f', parameters: tools[0]!.function.parameters! }]));
  const required = toolPlanOf({ tools, tool_choice: 'required', parallel_tool_calls: false }, flags)!;
  t.is(required.parallel, false);
  t.is(((required.grammar as unknown as { schema: { anyOf: unknown[] } }).schema.anyOf).length, 2);
  const many = toolPlanOf({ tools, tool_choice: 'required' }, flags)!.grammar as unknown as { schema: { type: string; minItems: number; items: { anyOf: unknown[] } } };
  t.deepEqual(many, callGrammar([{ name: 'f', parameters: tools[0]!.function.parameters! }, { name: 'g', parameters: { type: 'object', properties: {} } }], true) as unknown, 'required with parallel calls (the default): an array');
  t.is(many.schema.type, 'array');
  t.is(many.schema.minItems, 1);
  t.is(many.schema.items.anyOf.length, 2);
  t.throws(() => toolPlanOf({ tools: [{ type: 'function', function: { name: 'bad name' } }] }, flags), { message: /tools\[0\]\.function\.name must be/ });
  t.throws(() => toolPlanOf({ tools: [tools[0], tools[0]] }, flags), { message: /given twice/ });
  t.throws(() => toolPlanOf({ tool_choice: 'required' }, flags), { message: /tool_choice needs tools/ });
});

test('an assistant message with tool calls reaches the template with its arguments as objects', (t) => {
  const m = templateMessage({ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x": [1, 2]}' } }] });
  t.is(m['content'], '');
  t.deepEqual((m['tool_calls'] as { function: { arguments: unknown } }[])[0]!.function.arguments, { x: [1, 2] });
});
