// The tokenizer pool and actor in a real ActorSystem: round trips through the
// pool threads, refusals as data, backpressure, and threads gone after stop.
import test from 'ava';
import { TokenizerActor } from '../../actors/tokenizer/actor.js';
import type { DecodeReply, TokenizeOptions, TokenizeReply, TokenizerInfo, TokenizerMessage } from '../../actors/tokenizer/messages.js';
import { defaultTokenizerThreads } from '../../actors/tokenizer/pool.js';
import type { PromptInput } from '../../actors/tokenizer/prompt.js';
import { ActorSystem, moduleActor, type ActorRef } from '../../runtime/index.js';
import { BOS, EOT, llamaTokenizer, makeTokenizerDir, tokenizerDir } from './tokenizer-fixture.js';

const ASK = { timeoutMs: 30_000 };

// One actor (2 pool threads) serves the tests below, in order; the last one stops it.
const system = new ActorSystem();
const actor = new TokenizerActor({ modelDir: tokenizerDir(), maxModelLen: 64, threads: 2, maxInFlight: 2 });
const started = system.spawn<TokenizerMessage>('tokenizer', { factory: () => actor });

const tokenize = (ref: ActorRef<TokenizerMessage>, prompt: PromptInput | Record<string, unknown>, options: TokenizeOptions = {}) =>
  ref.ask<TokenizeReply>((replyTo) => ({ type: 'tokenize', prompt: prompt as PromptInput, options, replyTo }), ASK);

function refusal(reply: TokenizeReply | DecodeReply): { name: string; message: string } {
  if (reply.ok) throw new Error(`expected a refusal, got ${JSON.stringify(reply)}`);
  return reply.error;
}

test.serial('tokenize text, chat and token prompts through the actor', async (t) => {
  const ref = await started;
  t.is(actor.tokenizerPool!.workers.length, 2, 'the pool has the configured threads');

  const info = await ref.ask<TokenizerInfo>((replyTo) => ({ type: 'info', replyTo }), ASK);
  t.like(info, { vocabSize: 128256, maxModelLen: 64, bosTokenId: BOS, eosTokenId: EOT, hasChatTemplate: true, threads: 2 });

  const text = await tokenize(ref, { kind: 'text', text: 'Hello world 🦙' });
  t.deepEqual(text, { ok: true, promptTokenIds: llamaTokenizer().encode('Hello world 🦙'), prompt: 'Hello world 🦙' });
  t.is((text as { promptTokenIds: number[] }).promptTokenIds[0], BOS);

  const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi' }];
  const chat = await tokenize(ref, { kind: 'chat', messages });
  t.deepEqual(chat, { ok: true, promptTokenIds: llamaTokenizer().encodeChat(messages), prompt: llamaTokenizer().applyChatTemplate(messages) });
  t.is((chat as { promptTokenIds: number[] }).promptTokenIds.filter((id) => id === BOS).length, 1);

  t.deepEqual(await tokenize(ref, { kind: 'tokens', tokenIds: [BOS, 9906, 1917] }), { ok: true, promptTokenIds: [BOS, 9906, 1917], prompt: null });

  const decoded = await ref.ask<DecodeReply>((replyTo) => ({ type: 'decode', tokenIds: [BOS, 9906, 1917, EOT], skipSpecialTokens: true, replyTo }), ASK);
  t.deepEqual(decoded, { ok: true, text: 'Hello world' });
});

test.serial('bad prompts get clear refusals, and the actor keeps serving', async (t) => {
  const ref = await started;
  t.regex(refusal(await tokenize(ref, { kind: 'tokens', tokenIds: [BOS, 128256] })).message, /token id 128256 at position 1 is out of range: token ids must be integers in \[0, 128256\)/);
  t.like(refusal(await tokenize(ref, { kind: 'text', text: '' })), { name: 'PromptError', message: 'the prompt is empty' });
  t.like(refusal(await tokenize(ref, { kind: 'tokens', tokenIds: [] })), { name: 'PromptError' });

  const long = 'one two three four five six seven eight nine ten '.repeat(7);
  const n = llamaTokenizer().encode(long).length;
  t.true(n > 64);
  t.like(refusal(await tokenize(ref, { kind: 'text', text: long })), {
    name: 'PromptError',
    message: `the prompt is ${n} tokens long, more than the maximum model length of 64 tokens (--max-model-len); shorten the prompt`,
  });
  t.regex(refusal(await tokenize(ref, { kind: 'tokens', tokenIds: [BOS, 9906, 1917] }, { maxTokens: 62 })).message, /maximum context length is 64 tokens, but 65 were requested \(3 in the prompt, 62 for the completion\)/);
  t.like(refusal(await tokenize(ref, { kind: 'chat', messages: [{ role: 'robot', content: 'hi' }] })), {
    name: 'PromptError',
    message: 'messages[0].role "robot" is not one of system, user, assistant, tool, ipython',
  });
  t.like(refusal(await tokenize(ref, { kind: 'banana' })), { name: 'PromptError' });
  const badDecode = await ref.ask<DecodeReply>((replyTo) => ({ type: 'decode', tokenIds: [-3], replyTo }), ASK);
  t.regex(refusal(badDecode).message, /token id -3/);

  t.deepEqual(await tokenize(ref, { kind: 'text', text: 'Hello world' }), { ok: true, promptTokenIds: [BOS, 9906, 1917], prompt: 'Hello world' });
});

test.serial('many concurrent requests all complete with a small in-flight bound (backpressure, not loss)', async (t) => {
  const ref = await started;
  const texts = Array.from({ length: 24 }, (_, i) => `request ${i}: ${'🦙 llama '.repeat(i % 8)}`);
  const replies = await Promise.all(texts.map((text) => tokenize(ref, { kind: 'text', text })));
  replies.forEach((reply, i) => t.deepEqual(reply, { ok: true, promptTokenIds: llamaTokenizer().encode(texts[i]!), prompt: texts[i]! }));
});

test.serial('stopping the actor ends every pool thread', async (t) => {
  await started;
  const pool = actor.tokenizerPool!;
  const workers = [...pool.workers];
  t.is(workers.length, 2);
  t.true(workers.every((w) => w.threadId > 0));
  await system.shutdown();
  t.is(pool.workers.length, 0);
  t.true(workers.every((w) => w.threadId === -1), 'every pool thread has exited');
});

test.serial('spawned from its module (as a supervisor or another thread would), without a chat template: chat refused, text served', async (t) => {
  const other = new ActorSystem();
  t.teardown(() => other.shutdown());
  const dir = makeTokenizerDir((config) => delete config['chat_template']);
  const spec = moduleActor<TokenizerMessage>(new URL('../../actors/tokenizer/actor.js', import.meta.url), 'TokenizerActor', [{ modelDir: dir, maxModelLen: 64, threads: 1 }]);
  const ref = await other.spawn('tok', spec);
  t.like(refusal(await tokenize(ref, { kind: 'chat', messages: [{ role: 'user', content: 'hi' }] })), {
    name: 'ChatTemplateError',
    message: 'this model has no chat template; pass --chat-template',
  });
  t.deepEqual(await tokenize(ref, { kind: 'text', text: 'Hello world' }), { ok: true, promptTokenIds: [BOS, 9906, 1917], prompt: 'Hello world' });
});

test.serial('a bad model directory fails the spawn with the load error and leaves no thread behind', async (t) => {
  const other = new ActorSystem();
  const failing = new TokenizerActor({ modelDir: '/no/such/model', maxModelLen: 4096, threads: 1 });
  const error = await t.throwsAsync(other.spawn<TokenizerMessage>('tokenizer', { factory: () => failing }));
  t.is(error!.name, 'TokenizerLoadError');
  t.regex(error!.message, /\/no\/such\/model: no such model directory/);
  t.is(failing.tokenizerPool!.workers.length, 0);
  await other.shutdown();
});

test('default pool size: half the cores, 1 on a 2-core machine, at most 4', (t) => {
  t.is(defaultTokenizerThreads(1), 1);
  t.is(defaultTokenizerThreads(2), 1);
  t.is(defaultTokenizerThreads(4), 2);
  t.is(defaultTokenizerThreads(64), 4);
});
