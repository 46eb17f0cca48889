// The front's admission as a plain function: parameters validated and the
// prompt tokenized once for all n choices, refusals as typed values
// (code, field, message), max tokens and seeds per choice.
import test from 'ava';
import { admit, type Tokenize } from '../../actors/front/admission.js';
import type { EngineError } from '../../actors/front/protocol.js';
import type { TokenizeReply } from '../../actors/tokenizer/messages.js';

const limits = { vocabSize: 1000, maxModelLen: 64 };

function tokenizer(reply: TokenizeReply): { tokenize: Tokenize; calls: number } {
  const counter = { calls: 0, tokenize: (async () => { counter.calls++; return reply; }) as Tokenize };
  return counter;
}

const ok = (n: number): TokenizeReply => ({ ok: true, promptTokenIds: Array.from({ length: n }, (_, i) => i + 1), prompt: 'some text' });
const request = (params: object, extra: object = {}) => ({ requestId: 'r', prompt: { kind: 'text' as const, text: 'hi' }, params, ...extra });

test('n choices: one tokenization, ids r-0..r-(n-1), seeds seed + i, the max tokens asked for', async (t) => {
  const tk = tokenizer(ok(10));
  const admitted = await admit(request({ n: 3, seed: 40, maxTokens: 5, temperature: 0.5 }), limits, tk.tokenize);
  if ('code' in admitted) return t.fail(admitted.message);
  t.is(tk.calls, 1);
  t.deepEqual(admitted.choices.map((c) => [c.id, c.seed, c.params.maxTokens, c.params.temperature]), [['r-0', 40, 5, 0.5], ['r-1', 41, 5, 0.5], ['r-2', 42, 5, 0.5]]);
  t.false(admitted.choices.some((c) => 'n' in c.params), 'each choice is one request');
  t.is(admitted.promptText, 'some text');
  const one = await admit(request({ seed: 7 }), limits, tokenizer(ok(10)).tokenize);
  t.like(one, { choices: [{ id: 'r', seed: 7, params: { maxTokens: 16 } }] });
});

test('refusals are typed: the parameter, the prompt, the chat template, the context length', async (t) => {
  const refusal = async (params: object, reply: TokenizeReply, extra: object = {}) => (await admit(request(params, extra), limits, tokenizer(reply).tokenize)) as EngineError;
  t.like(await refusal({ topP: 0 }, ok(3)), { code: 'invalid_params', field: 'topP', message: 'topP must be in (0, 1], got 0' });
  t.like(await refusal({ logitBias: { 5000: 1 } }, ok(3)), { code: 'invalid_params', field: 'logitBias' });
  t.like(await refusal({ maxTokens: 0 }, ok(3)), { code: 'invalid_params', field: 'maxTokens' });
  const params = await refusal({ temperature: -1 }, ok(3));
  t.is(params.field, 'temperature');
  t.like(await refusal({}, { ok: false, error: { name: 'PromptError', message: 'token id 5000 at position 0 is out of range' } }), { code: 'invalid_prompt', field: 'prompt' });
  t.like(await refusal({}, { ok: false, error: { name: 'ChatTemplateError', message: 'no chat template' } }), { code: 'chat_template', field: 'messages' });
  t.like(await refusal({}, { ok: false, error: { name: 'PromptError', message: 'too long', promptLength: 80 } }), { code: 'context_length', promptLength: 80, maxModelLen: 64 });
  t.like(await refusal({ maxTokens: 60 }, ok(10)), { code: 'context_length', field: 'maxTokens', promptLength: 10 });
  t.like(await refusal({}, ok(64)), { code: 'context_length', field: 'prompt', promptLength: 64 });
  t.like(await refusal({}, ok(64), { maxTokensDefault: 'context' }), { code: 'context_length', promptLength: 64 });
});

test('max tokens by default: 16 (never past the context), or the rest of the context', async (t) => {
  t.like(await admit(request({}), limits, tokenizer(ok(10)).tokenize), { maxTokens: 16 });
  t.like(await admit(request({}), limits, tokenizer(ok(60)).tokenize), { maxTokens: 4 });
  t.like(await admit(request({}, { maxTokensDefault: 'context' }), limits, tokenizer(ok(10)).tokenize), { maxTokens: 54 });
  t.like(await admit(request({ maxTokens: 54 }), limits, tokenizer(ok(10)).tokenize), { maxTokens: 54 });
});

test('a bad parameter is refused before the prompt is tokenized', async (t) => {
  const tk = tokenizer(ok(3));
  await admit(request({ minP: 2 }), limits, tk.tokenize);
  t.is(tk.calls, 0);
});
