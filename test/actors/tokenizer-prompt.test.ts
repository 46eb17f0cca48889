// Prompt checks as plain functions: shapes, token id ranges, lengths against
// max_model_len. Every refusal is a PromptError naming the value at fault.
import test from 'ava';
import { PromptError } from '../../actors/tokenizer/errors.js';
import { checkPromptLength, checkTokenIds, contentText, validatePromptInput } from '../../actors/tokenizer/prompt.js';

test('valid prompts pass through typed', (t) => {
  t.deepEqual(validatePromptInput({ kind: 'text', text: 'hi' }), { kind: 'text', text: 'hi' });
  t.deepEqual(validatePromptInput({ kind: 'tokens', tokenIds: [1, 2] }), { kind: 'tokens', tokenIds: [1, 2] });
  const messages = [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], name: 'ann' },
    { role: 'assistant', content: 'ok' },
    { role: 'tool', content: '{"t": 1}' },
    { role: 'ipython', content: 'out' },
  ];
  t.deepEqual(validatePromptInput({ kind: 'chat', messages }), { kind: 'chat', messages } as never);
  t.is(contentText([{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }]), 'a\nb');
});

test('empty prompts are refused', (t) => {
  t.throws(() => validatePromptInput({ kind: 'text', text: '' }), { instanceOf: PromptError, message: 'the prompt is empty' });
  t.throws(() => validatePromptInput({ kind: 'tokens', tokenIds: [] }), { instanceOf: PromptError, message: /empty \(no token ids\)/ });
  t.throws(() => validatePromptInput({ kind: 'chat', messages: [] }), { instanceOf: PromptError, message: /conversation is empty/ });
});

test('malformed prompts and messages are refused with what is wrong', (t) => {
  t.throws(() => validatePromptInput('hello'), { instanceOf: PromptError, message: /must be an object/ });
  t.throws(() => validatePromptInput({ kind: 'audio' }), { instanceOf: PromptError, message: /unknown prompt kind "audio"/ });
  t.throws(() => validatePromptInput({ kind: 'text', text: 42 }), { instanceOf: PromptError, message: /must be a string, got number 42/ });
  t.throws(() => validatePromptInput({ kind: 'tokens', tokenIds: 'abc' }), { instanceOf: PromptError, message: /list of token ids/ });
  t.throws(() => validatePromptInput({ kind: 'chat', messages: [{ role: 'wizard', content: 'hi' }] }), {
    instanceOf: PromptError,
    message: 'messages[0].role "wizard" is not one of system, user, assistant, tool, ipython',
  });
  t.throws(() => validatePromptInput({ kind: 'chat', messages: [{ role: 'user' }] }), { instanceOf: PromptError, message: /messages\[0\]\.content must be a string or a list of text parts/ });
  t.throws(() => validatePromptInput({ kind: 'chat', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }), {
    instanceOf: PromptError,
    message: /messages\[0\]\.content\[0\] is of type "image_url": only text parts/,
  });
  t.throws(() => validatePromptInput({ kind: 'chat', messages: [{ role: 'user', content: 'a' }, null] }), { instanceOf: PromptError, message: /messages\[1\] must be an object/ });
});

test('token ids must be integers in [0, vocab)', (t) => {
  t.notThrows(() => checkTokenIds([0, 5, 128255], 128256));
  t.throws(() => checkTokenIds([1, 128256], 128256), { instanceOf: PromptError, message: 'token id 128256 at position 1 is out of range: token ids must be integers in [0, 128256)' });
  t.throws(() => checkTokenIds([-1], 128256), { instanceOf: PromptError, message: /token id -1 at position 0/ });
  t.throws(() => checkTokenIds([1.5], 128256), { instanceOf: PromptError, message: /token id 1\.5/ });
  t.throws(() => checkTokenIds(['7'], 128256), { instanceOf: PromptError, message: /token id "7"/ });
});

test('a prompt longer than max_model_len is refused with both numbers, never truncated', (t) => {
  t.notThrows(() => checkPromptLength(4096, 4096));
  t.throws(() => checkPromptLength(4097, 4096), {
    instanceOf: PromptError,
    message: 'the prompt is 4097 tokens long, more than the maximum model length of 4096 tokens (--max-model-len); shorten the prompt',
  });
  t.notThrows(() => checkPromptLength(4000, 4096, 96));
  t.throws(() => checkPromptLength(4000, 4096, 97), { instanceOf: PromptError, message: /maximum context length is 4096 tokens, but 4097 were requested \(4000 in the prompt, 97 for the completion\)/ });
});
